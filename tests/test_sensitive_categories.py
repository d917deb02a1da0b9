"""CoP §4, no special-category inferences: activity sources and types naming a sensitive topic are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.contract_folder import VALID, make_folder, with_row
from waymark.models.data import ContractViolation, load_learning_data, validate_folder
from waymark.models.data.sensitive import (
    PACKAGED_TERMS,
    SensitiveTermsError,
    load_terms,
    parse_terms,
    sensitive_term,
    words_of,
)
from waymark.models.settings import get_settings

TERMS = load_terms()


def _activity(*rows: tuple[str, str, int]) -> list[list[str]]:
    """The valid activity table plus one row per (source, activity_type, count) for S1 on M1."""
    return [*VALID["activity"], *([["S1", "M1", "2024J", "7", s, t, str(n)] for s, t, n in rows])]


@pytest.mark.parametrize(
    ("name", "term"),
    [
        ("reading_mental_health_and_you", "health*"),
        ("counselling_booking", "counsel*"),
        ("wellbeing_hub", "wellbeing"),
        ("well-being-week", "well being"),
        ("MentalHealthFirstAid", "health*"),
        ("lgbtq_society", "lgbt*"),
        ("prayer_room_entry", "prayer*"),
        ("disability_services", "disab*"),
        ("trade_union_meeting", "trade union*"),
        ("race_equality_network", "race"),
        ("sex_education_quiz", "sex"),
        ("pregnancy_advice", "pregnan*"),
        ("political_society", "political"),
        # A module resource that only names the course's subject is refused too: the rule is that a
        # category names a kind of activity, never a topic, and renaming it costs no feature.
        ("healthcare_management", "health*"),
        # In the languages of the institutions' own names: a Brazilian university's had passed.
        ("saude_mental", "saude*"),
        ("atendimento_psicologico", "psicolog*"),
        ("nucleo_acessibilidade_deficiencia", "deficien*"),
        ("coletivo_negro_neabi", "coletivo negro"),
        ("beratung_schwangerschaft", "schwanger*"),
        ("aumonerie_etudiante", "aumonerie"),
        # as written on screen, accents and all (words lose their accents before they are compared)
        ("Saúde Mental", "saude*"),
        ("Atendimento Psicológico", "psicolog*"),
        ("Aumônerie", "aumonerie"),
        ("Église", "eglise"),
        # North American disability services and Indigenous student centres (a polytechnic's review)
        ("accommodated_test_sitting", "accommodated test*"),
        ("AccessibilityServicesBooking", "accessibility service*"),
        ("first_nations_student_centre", "first nations"),
        ("IndigenousStudentCentre", "indigenous"),
        # a Korean university's excused menstrual leave; an Indian college's caste-based schemes
        ("excused_menstrual_leave", "menstrua*"),
        ("sc_st_cell", "sc st"),
        ("remedial_coaching_sc_st_obc", "sc st"),
        ("obc_cell_meeting", "obc"),
        ("caste_certificate_upload", "caste"),
        ("divyangjan_support", "divyang*"),
        # a Nigerian university's chapel register and religious fellowships
        ("chapel_attendance", "chapel"),
        ("bible_study", "bible*"),
        ("quran_recitation", "quran*"),
        ("catholic_mass", "catholic*"),
        ("ramadan_tafsir", "ramadan"),
        ("jummah_lecture", "jummah"),
        # an Italian university's learning-disorder desk, mental health pages and prayer room
        ("sportello_dsa", "sportello dsa"),
        ("salute_mentale", "salute"),
        ("dislessia_risorse", "dislessi*"),
        ("sala_preghiera", "preghiera"),
        ("gravidanza_supporto", "gravidanza"),
        # a Polish university's disability office (ł folded to l), mental health pages and chaplaincy
        ("biuro_osob_niepelnosprawnych", "niepelnosprawn*"),
        ("konsultacje w Biurze ds. Osób Niepełnosprawnych", "niepelnosprawn*"),
        ("zdrowie_psychiczne", "zdrowie psychiczne"),
        ("pomoc_psychologiczna", "pomoc psychologiczn*"),
        ("duszpasterstwo_akademickie", "duszpasterstw*"),
        ("urlop_zdrowotny_ciąża", "ciaza"),
        # a Vietnamese university's counselling, mental health and disability support pages
        ("tu_van_tam_ly", "tu van tam ly"),
        ("suc_khoe_tam_than", "suc khoe"),
        ("ho_tro_sinh_vien_khuyet_tat", "khuyet tat"),
        ("clb_đồng_tính", "dong tinh"),
        # a prison programme's tablet content (criminal-offence data, GDPR art. 10)
        ("offending_behaviour_programme", "offending behav*"),
        ("probation_appointment", "probation appointment*"),
        ("parole_board_report", "parole*"),
        ("health_clinic_booking", "health*"),
        ("clinic_visit", "clinic visit*"),
        ("student_clinic_booking", "clinic booking*"),
    ],
)
def test_a_category_naming_a_special_category_topic_is_found(name: str, term: str) -> None:
    found = sensitive_term(name, TERMS)
    assert found is not None
    assert found.text == term


@pytest.mark.parametrize(
    "name",
    [
        # Every activity type of the OULAD import and the ready mappings, and common words that contain
        # a term's letters without being that word.
        "resource",
        # Portuguese, Spanish and French words a prefix of a term would catch
        "quadro_negro",
        "politica_de_privacidade",
        "politique_de_confidentialite",
        "gravidade",
        "syndicate_forum",
        "rss_syndication",
        "sindicacion_rss",
        "dsa_lab_exercise",  # a data structures and algorithms course's
        "genero_literario",
        "acessibilidade_da_pagina",
        "oucontent",
        "forumng",
        "oucollaborate",
        "questionnaire",
        "externalquiz",
        "homepage",
        "sharedsubpage",
        "dualpane",
        "glossary",
        "external_tool",
        "collaborate",
        "assignment",
        "trace_log",
        "essex_campus_wifi",
        "template_page",
        "unionised_timetable",
        "grace_period",
        "transfer_request",
        "students_union",
        "accessibility_statement",
        "accommodation_office",
        "castellano_basico",
        "bibliography",
        "method_statement",
        "broadcast_lecture",
        "psychologia_rozwoju",  # a Polish psychology course's pages
        "kolokwium_zaliczeniowe",
        "tam_ly_hoc_dai_cuong",  # a Vietnamese psychology course's pages
        "law_clinic",  # a law school's, as maths and writing clinics are study support
        "maths_clinic",
        "academic_probation_meeting",  # a US university's academic standing, not a court's
        "writing_clinic_session",
    ],
)
def test_a_neutral_category_is_not_refused(name: str) -> None:
    assert sensitive_term(name, TERMS) is None


def test_words_are_split_on_underscores_hyphens_spaces_and_case() -> None:
    assert words_of("Reading_mental-health andYou") == ("reading", "mental", "health", "and", "you")
    assert words_of("trade_union") != words_of("union_trade")
    assert sensitive_term("union_trade", parse_terms(["trade union"])) is None


def test_validation_refuses_a_sensitive_activity_type_naming_table_column_value_count_and_remedy(
    tmp_path: Path,
) -> None:
    folder = make_folder(
        tmp_path,
        activity=_activity(
            ("vle", "reading_mental_health_and_you", 2),
            ("vle", "reading_mental_health_and_you", 1),
            ("counselling", "booking", 1),
        ),
    )
    report = validate_folder(folder)
    assert not report.ok
    found = {(f.column, f.examples[0].value): f for f in report.findings if f.rule == "sensitive_category"}
    assert set(found) == {("activity_type", "reading_mental_health_and_you"), ("source", "counselling")}
    by_type = found["activity_type", "reading_mental_health_and_you"]
    assert by_type.table == "activity"
    assert by_type.count == 2  # rows, however many actions they count
    assert by_type.examples[0].file == "activity.csv" and by_type.examples[0].row == len(VALID["activity"])
    text = by_type.describe()
    assert "'reading_mental_health_and_you'" in text and "(2 rows)" in text
    assert "Rename it to a neutral kind" in text and "leave its rows out" in text
    assert "CoP §4" in text


def test_a_folder_with_a_sensitive_category_never_becomes_features(tmp_path: Path) -> None:
    folder = make_folder(tmp_path, activity=_activity(("vle", "counselling_booking", 3)))
    with pytest.raises(ContractViolation, match="counselling_booking"):
        load_learning_data(folder)


def test_the_terms_file_setting_replaces_the_packaged_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = make_folder(
        tmp_path / "data", activity=with_row("activity", ["S1", "M1", "2024J", "7", "vle", "kiosk", "1"])
    )
    assert validate_folder(folder).ok
    own = tmp_path / "terms.toml"
    own.write_text('terms = ["kiosk"]\n', encoding="utf-8")
    monkeypatch.setenv("WAYMARK_SENSITIVE_TERMS_FILE", str(own))
    report = validate_folder(folder)
    assert [(f.rule, f.column) for f in report.findings] == [("sensitive_category", "activity_type")]


def test_validation_never_fixes_the_cached_settings_early(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A command reads its settings after validating its data folder (waymark directory import --data).
    get_settings.cache_clear()
    validate_folder(make_folder(tmp_path))
    monkeypatch.setenv("WAYMARK_DATABASE_URL", "sqlite:///later.db")
    try:
        assert get_settings().database_url == "sqlite:///later.db"
    finally:
        get_settings.cache_clear()


def test_a_terms_file_without_a_list_of_terms_is_refused_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "terms.toml"
    bad.write_text('words = ["health"]\n', encoding="utf-8")
    with pytest.raises(SensitiveTermsError, match=r"terms\.toml"):
        load_terms(bad)
    assert load_terms(PACKAGED_TERMS) == TERMS


def test_the_valid_folder_and_its_activity_types_pass() -> None:
    names = {r[i] for r in VALID["activity"][1:] for i in (4, 5)}
    assert [n for n in names if sensitive_term(n, TERMS)] == []
