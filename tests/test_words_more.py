"""CoP §4 word lists: a medical school's e-portfolio, a Kazakh university's names and not-recorded values.

Sensitive terms are looked up as validation looks them up (``sensitive_term`` with the packaged list);
not-recorded values through ``validate_folder``'s ``says_not_recorded`` warning. The institutions are
fictional trial sites.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.contract_folder import VALID, make_folder, with_cell
from waymark.models.data import validate_folder
from waymark.models.data.sensitive import PACKAGED_TERMS, load_terms, sensitive_term

TERMS = load_terms(PACKAGED_TERMS)


@pytest.mark.parametrize(
    ("name", "term"),
    [
        ("ftp_referral", "ftp referral*"),
        ("ftp_panel", "ftp panel*"),
        ("ftp_concern_form", "ftp concern*"),
        ("ftp_hearing", "ftp hearing*"),
        ("FtP Panel", "ft p panel*"),  # a label: "FtP" splits as ft p
        ("fit_note", "fit note*"),
        ("oh_referral", "oh referral*"),
        ("oh_clearance", "oh clearance*"),
        ("oh_assessment", "oh assessment*"),
        ("professionalism_concern", "professionalism concern*"),
        ("student_support_referral", "support referral*"),
        ("reasonable_adjustments_plan", "reasonable adjustment*"),
        ("yellow_card", "yellow card*"),
        ("academic_misconduct_hearing", "misconduct hearing*"),
        ("misconduct_case", "misconduct case*"),
        ("immunisation_status", "immunis* status"),
        ("vaccination_record", "vaccin* record*"),
        ("bbv_clearance", "bbv clearance*"),
        ("hep_b", "hep b"),
        ("sick_note", "sick*"),
        ("sickness_absence", "sick*"),
        ("counselling", "counsel*"),
        ("wellbeing", "wellbeing"),
    ],
)
def test_a_medical_schools_health_and_conduct_records_are_refused(name: str, term: str) -> None:
    """A UK medical school's e-portfolio activity (occupational health, fitness to practise, fit notes,
    reasonable adjustments, professionalism concerns) had passed and become features."""
    found = sensitive_term(name, TERMS)
    assert found is not None
    assert found.text == term


@pytest.mark.parametrize(
    "name",
    [
        "john",
        "photo",
        "sftp_upload",
        "ftp_upload",
        "ftp_server_lab",
        "oh_no_quiz",
        "ohio_campus",
        "phone_booking",
        "johnson_lecture",
        "invalid_login",  # English invalid, not Russian инвалид
        "immunisation_elearning",  # teaching on immunisation, not the student's own record
        "psihologiya_lektsiya",  # a psychology course, as psychology passes in English
        "психология",
    ],
)
def test_short_abbreviations_match_only_as_their_own_word(name: str) -> None:
    """The medical school's ftp and oh terms need a second word: ftp is a file transfer elsewhere, and
    neither may match inside john, photo or sftp_upload."""
    assert sensitive_term(name, TERMS) is None


@pytest.mark.parametrize("name", ["nhs_elearning", "nhs_placement_induction", "nhs_mandatory_training"])
def test_nhs_study_activity_passes(name: str) -> None:
    """The medical school's NHS e-learning and placement inductions are study: nhs alone is no longer a
    term."""
    assert sensitive_term(name, TERMS) is None


@pytest.mark.parametrize(
    ("name", "term"),
    [
        ("nhs_appointment", "nhs appointment*"),
        ("nhs_gp_registration", "nhs gp*"),
        ("nhs_111", "nhs 111"),
        ("nhs_talking_therapies", "therap*"),
        ("student_mental_health_support", "health*"),
        ("counselling_booking", "counsel*"),
        ("sexual_health_screening", "health*"),
        # A clinical specialty's name is also the name of the service a student would use: words
        # cannot tell the medical school's case log and clinic placement from a student's own
        # appointment, so they stay refused and are renamed by kind (case_log, clinic_placement).
        ("psychiatry_case_log", "psychiatr*"),
        ("sexual_health_clinic", "health*"),
    ],
)
def test_a_students_own_health_service_use_is_still_refused(name: str, term: str) -> None:
    """The medical school's trial: narrowing nhs lets none of a student's own health service use through."""
    found = sensitive_term(name, TERMS)
    assert found is not None
    assert found.text == term


@pytest.mark.parametrize(
    ("name", "term"),
    [
        ("psiholog_konsultatsiya", "psiholog"),
        ("psikhologicheskaya_podderzhka", "psikholog* podderzh*"),
        ("medpunkt_vizit", "medpunkt*"),
        ("invalid_tsentr", "invalid tsentr*"),
        ("tsentr_invalidov", "invalidov"),
        ("ovz_podderzhka", "ovz"),
        ("mechet", "mechet*"),
        ("meshit_visit", "meshit*"),
        ("психолог", "психолог"),
        ("Консультация психолога", "психолога"),
        ("медпункт", "медпункт*"),
        ("инвалиды", "инвалид*"),
        ("инвалидность", "инвалид*"),
        ("овз".upper(), "овз"),  # as written, in capitals
        ("овз".upper() + "_поддержка", "овз"),
        ("мечеть", "мечет*"),
        ("мешіт", "мешіт*"),
        ("намаз", "намаз*"),
    ],
)
def test_russian_and_kazakh_health_disability_and_religion_names_are_refused(name: str, term: str) -> None:
    """A Kazakh university's psychologist, first-aid post, disability centre and mosque activity had
    passed, transliterated and in Cyrillic."""
    found = sensitive_term(name, TERMS)
    assert found is not None
    assert found.text == term


def test_validation_refuses_the_medical_schools_and_the_kazakh_universitys_categories(tmp_path: Path) -> None:
    """Through validation, as an import would meet them."""
    rows = [
        ["S1", "M1", "2024J", "7", s, t, "1"]
        for s, t in [("eportfolio", "oh_referral"), ("medpunkt", "vizit")]
    ]
    folder = make_folder(tmp_path, activity=[*VALID["activity"], *rows])
    found = {
        (f.column, f.examples[0].value)
        for f in validate_folder(folder).findings
        if f.rule == "sensitive_category"
    }
    assert found == {("activity_type", "oh_referral"), ("source", "medpunkt")}


def _said(tmp_path: Path, value: str) -> set[str]:
    """The values the says_not_recorded warning names when S2's gender is ``value``."""
    folder = make_folder(
        tmp_path, protected_characteristics=with_cell("protected_characteristics", 2, "gender", value)
    )
    return {v for w in validate_folder(folder).warnings if w.rule == "says_not_recorded" for v, _ in w.values}


@pytest.mark.parametrize(
    "value",
    [
        "не указана",
        "не указано".capitalize(),
        "не указан",
        " " + "не указаны".upper() + " ",
        "нет данных",
        "неизвестно",
        "Неизвестен",
        "не определено",
        "не определён",
        "затрудняюсь ответить",
        "көрсетілмеген",
        "КӨРСЕТІЛМЕГЕН",
        "белгісіз",
        "Мәлімет жоқ",
    ],
)
def test_russian_and_kazakh_not_recorded_values_are_warned_of(tmp_path: Path, value: str) -> None:
    """A Kazakh university's "не указано" and "белгісіз", in any case and with spaces around them, were
    audited as groups of their own."""
    assert _said(tmp_path, value) == {value.strip()}


@pytest.mark.parametrize("value", ["нет", "Жоқ"])
def test_a_russian_or_kazakh_answer_of_no_is_a_value(tmp_path: Path, value: str) -> None:
    """ "Нет" and "Жоқ" are "no" (none, in a disability column): a group, not a missing answer."""
    assert _said(tmp_path, value) == set()


@pytest.mark.parametrize(
    ("name", "term"),
    [
        ("sesiwn_gwnsela", "gwnsela*"),  # mutated: cwnsela after sesiwn
        ("ystafell_weddi", "weddi*"),
        ("ymweliad_chaplan", "chaplan*"),
        ("ei_hiechyd", "ei hiechyd"),
        ("iechyd_meddwl", "iechyd meddwl"),
        ("cymorth_anabledd", "anabledd*"),
        ("dyslecsia", "dyslecsia"),
        ("grwp_lhdt", "lhdt*"),
    ],
)
def test_welsh_special_category_names_and_their_mutations_are_refused(name: str, term: str) -> None:
    """A Welsh university's cwnsela, gweddi and iechyd meddwl passed, and mutated forms would have even
    with the dictionary forms listed (the matcher compares a word's start)."""
    found = sensitive_term(name, TERMS)
    assert found is not None and found.text == term


@pytest.mark.parametrize(
    "name", ["darlith", "seminar", "gwaith_cwrs", "arholiad", "llyfrgell", "Capel_Curig_trip"]
)
def test_welsh_study_activity_passes(name: str) -> None:
    assert sensitive_term(name, TERMS) is None


@pytest.mark.parametrize("value", ["Anhysbys", "Gwell gennyf beidio â dweud", "heb ei nodi"])
def test_welsh_not_recorded_values_are_warned_of(tmp_path: Path, value: str) -> None:
    """A Welsh university's "Anhysbys" (unknown) was compared in the gate as a group of its own."""
    assert _said(tmp_path, value) == {value.strip()}


@pytest.mark.parametrize("value", ["Bu farw", "Wedi marw", "Ymadawedig"])
def test_a_welsh_word_for_a_death_is_caught_as_the_others_are(value: str) -> None:
    import re

    from waymark.training.ingest.mapping.schema import DEATH_WORDS

    assert re.search(DEATH_WORDS, value, re.IGNORECASE)


@pytest.mark.parametrize(
    ("name", "term"),
    [
        ("legeattest", "legeattest*"),
        ("sykemelding_registrert", "sykemeld*"),
        ("studentpsykolog_time", "studentpsykolog*"),
        ("psykisk_uke", "psykisk*"),
        ("tilrettelegging_eksamen", "tilrettelegg*"),
        ("samisk_studentforening", "samisk student*"),
        ("graviditet", "graviditet*"),
        ("studenthalsan_besok", "studenthals*"),
        ("yths_ajanvaraus", "yths"),
        ("erityisjarjestelyt_tentti", "erityisjarjestely*"),
        ("tuition_hold_notice", "tuition hold*"),
        ("fee_payment", "fee payment*"),
        ("hardship_fund_application", "hardship*"),
    ],
)
def test_nordic_special_category_and_money_names_are_refused(name: str, term: str) -> None:
    """A Norwegian university's legeattest, sykemelding and studentpsykolog passed beside a refused
    health_service, and a Bangladeshi university's tuition holds became features."""
    found = sensitive_term(name, TERMS)
    assert found is not None and found.text == term
    # money is not a special category, and is not said to be one (a reviewer)
    assert found.kind == (
        "circumstance"
        if name in {"tuition_hold_notice", "fee_payment", "hardship_fund_application"}
        else "special"
    )


@pytest.mark.parametrize(
    "name",
    [
        "forelesning",
        "psykologi_forelesning",
        "prestasjon",
        "sykkelparkering",
        "samisk_sprak",
        "tentti",
        "fee_structure_reading",
        "debt_markets_quiz",
        "kurssi_materiaali",
    ],
)
def test_nordic_study_activity_and_money_teaching_pass(name: str) -> None:
    assert sensitive_term(name, TERMS) is None
