"""The student directory: loaded all or nothing, every bad row named, erased students never loaded."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from waymark.service.db.engine import make_engine, transaction
from waymark.service.db.schema import DirectoryEntry, TrainingExclusion
from waymark.service.directory import DirectoryRefused, import_directory

HEADER = "student_id,display_name,preferred_name,pronouns,email"
KNOWN = frozenset({"S1", "S2", "S3"})


def _file(tmp_path: Path, *lines: str, header: str = HEADER) -> Path:
    path = tmp_path / "directory.csv"
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


def _stored(engine: Engine) -> dict[str, tuple[str, str | None, str | None, str]]:
    with transaction(engine) as session:
        return {
            e.student_id: (e.display_name, e.preferred_name, e.pronouns, e.email)
            for e in session.scalars(select(DirectoryEntry))
        }


def test_a_valid_file_replaces_the_whole_directory(engine: Engine, tmp_path: Path) -> None:
    first = _file(
        tmp_path, "S1,Ada Lovelace,Ada,she/her,ada@example.ac.uk", "S2,Alan Turing,,,alan@example.ac.uk"
    )
    assert import_directory(engine, first, known=KNOWN).loaded == 2
    assert _stored(engine) == {
        "S1": ("Ada Lovelace", "Ada", "she/her", "ada@example.ac.uk"),
        "S2": ("Alan Turing", None, None, "alan@example.ac.uk"),
    }
    again = _file(tmp_path, "S3,Grace Hopper,grace@example.ac.uk", header="student_id,display_name,email")
    assert import_directory(engine, again, known=KNOWN).loaded == 1
    assert _stored(engine) == {"S3": ("Grace Hopper", None, None, "grace@example.ac.uk")}


def test_a_file_excel_saved_as_csv_utf8_loads_names_in_any_script(engine: Engine, tmp_path: Path) -> None:
    """Excel's "CSV UTF-8" begins with a byte-order mark: an Indian university's file was refused as
    missing student_id beside an "unknown column" that printed the mark inside its name."""
    path = _file(tmp_path, "S1,अदिति शर्मा,Aditi,she/her,aditi@example.ac.in")
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert import_directory(engine, path, known=KNOWN).loaded == 1
    assert _stored(engine)["S1"][0] == "अदिति शर्मा"


def test_a_file_not_in_utf8_is_refused_with_how_to_convert_it(engine: Engine, tmp_path: Path) -> None:
    """A French university's ISO-8859-15 directory met a bare codec error; converted as cp1252, its
    staff read "L½titia Dub½uf"."""
    path = tmp_path / "directory.csv"
    path.write_bytes(f"{HEADER}\nS1,Lætitia Dubœuf,,,l@example.fr\n".encode("iso-8859-15"))
    with pytest.raises(DirectoryRefused, match="is not UTF-8") as refused:
        import_directory(engine, path, known=KNOWN)
    assert "iconv" in str(refused.value) and "ISO-8859-15" in str(refused.value)
    assert _stored(engine) == {}


def test_every_bad_row_is_named_and_nothing_is_loaded(engine: Engine, tmp_path: Path) -> None:
    import_directory(engine, _file(tmp_path, "S1,Ada Lovelace,,,ada@example.ac.uk"), known=KNOWN)
    bad = _file(
        tmp_path,
        "S2,Alan Turing,,,alan@example.ac.uk",
        "S2,Alan M. Turing,,,alan.turing@example.ac.uk",
        "S9,Nobody Known,,,nobody@example.ac.uk",
        "S3,Grace Hopper,,,grace-at-example.ac.uk",
        "S1,,,,ada@example.ac.uk",
        "S3,Grace\x07Hopper,,,grace@example.ac.uk",
        "S3,Grace,Hopper,,,grace@example.ac.uk",
    )
    with pytest.raises(DirectoryRefused) as refused:
        import_directory(engine, bad, known=KNOWN)
    message = str(refused.value)
    assert "nothing was imported" in message
    for expected in (
        "line 3: student_id 'S2' appears again (first on line 2)",
        "line 4: student_id 'S9' is not a student Waymark knows",
        "line 5: email 'grace-at-example.ac.uk' is not an email address",
        "line 6: display_name is empty",
        "line 7: display_name holds a control character",
        "line 8: has 6 fields, the header 5",
    ):
        assert expected in message
    assert "line 2:" not in message
    assert _stored(engine) == {"S1": ("Ada Lovelace", None, None, "ada@example.ac.uk")}


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("student_id,display_name", "missing column(s) email"),
        ("student_id,display_name,email,date_of_birth", "unknown column(s) date_of_birth"),
        # a German university's spreadsheet saved the file with semicolons
        ("student_id;display_name;email", "the file is separated by semicolons"),
    ],
)
def test_a_wrong_header_is_refused_by_name(
    engine: Engine, tmp_path: Path, header: str, expected: str
) -> None:
    with pytest.raises(DirectoryRefused, match=re.escape(expected)):
        import_directory(engine, _file(tmp_path, "S1,Ada,ada@example.ac.uk,x", header=header), known=KNOWN)
    assert _stored(engine) == {}


def test_students_whose_erasure_was_processed_are_never_loaded(engine: Engine, tmp_path: Path) -> None:
    with transaction(engine) as session:
        session.add(TrainingExclusion(student_id="S2", at=datetime.now(UTC)))
    done = import_directory(
        engine,
        _file(tmp_path, "S1,Ada Lovelace,,,ada@example.ac.uk", "S2,Alan Turing,,,alan@example.ac.uk"),
        known=KNOWN,
    )
    assert (done.loaded, done.skipped_erased) == (1, 1)
    assert set(_stored(engine)) == {"S1"}


def test_an_export_still_listing_an_erased_student_refreshes_the_directory(
    engine: Engine, tmp_path: Path
) -> None:
    # After the erasure the student is in no batch, relationship or cleaned data folder, so not in
    # ``known``; the registry's next export still lists them, and everyone else's entry must refresh.
    with transaction(engine) as session:
        session.add(TrainingExclusion(student_id="S2", at=datetime.now(UTC)))
    done = import_directory(
        engine,
        _file(tmp_path, "S1,Ada Lovelace,,,ada@example.ac.uk", "S2,Alan Turing,,,alan@example.ac.uk"),
        known=KNOWN - {"S2"},
    )
    assert (done.loaded, done.skipped_erased) == (1, 1)
    assert set(_stored(engine)) == {"S1"}


def test_the_command_loads_a_synthetic_directory_and_names_bad_rows(synth_dir: Path, tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if k.startswith(("PATH", "HOME"))},
        "WAYMARK_DATABASE_URL": f"sqlite:///{tmp_path}/service.db",
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "waymark", "directory", "import", *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, check=False)

    loaded = run(str(synth_dir / "directory.csv"), "--data", str(synth_dir))
    assert loaded.returncode == 0, loaded.stderr
    students = len((synth_dir / "directory.csv").read_text(encoding="utf-8").splitlines()) - 1
    assert f"Loaded {students:,} directory entries." in loaded.stdout
    bad = _file(tmp_path, "S00000001,Ada Lovelace,,,not-an-address", "NOBODY,Nobody,,,n@example.ac.uk")
    refused = run(str(bad), "--data", str(synth_dir))
    message = " ".join(refused.stderr.split())
    assert refused.returncode == 2
    assert "line 2: email 'not-an-address' is not an email address" in message
    assert "line 3: student_id 'NOBODY' is not a student Waymark knows" in message
    assert "nothing was imported" in message
    engine = make_engine(env["WAYMARK_DATABASE_URL"])
    assert len(_stored(engine)) == students  # the earlier directory is untouched
    engine.dispose()


def test_a_number_known_without_its_separators_is_named_so(engine: Engine, tmp_path: Path) -> None:
    """A Swedish university's directory wrote Ladok's personnummer `000108-6131` where the data imports
    wrote the ten digits: every row was refused, and nothing said how near they were."""
    known = frozenset({"0001086131"})
    with pytest.raises(DirectoryRefused) as refused:
        import_directory(engine, _file(tmp_path, "000108-6131,Östen Ek,,,osten@example.se"), known=known)
    assert "(written '0001086131', without its separators, it is" in str(refused.value)
    # Through the imports' secret too, as the pseudonyms the records carry.
    pseudonyms = frozenset({f"p-{n}" for n in known})
    with pytest.raises(DirectoryRefused) as hashed:
        import_directory(
            engine,
            _file(tmp_path, "000108-6131,Östen Ek,,,osten@example.se"),
            known=pseudonyms,
            pseudonym=lambda n: f"p-{n}",
        )
    assert "'000108-6131' is not a student Waymark knows (written '0001086131'" in str(hashed.value)
    with pytest.raises(DirectoryRefused) as far:
        import_directory(engine, _file(tmp_path, "999999-0000,Nobody,,,n@example.se"), known=known)
    assert "without its separators" not in str(far.value)
