"""An independent reader: LibreOffice converts the workbook to PDF and CSV headlessly and the text is there."""

import csv
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader

from tests.debrief_data import EMOJI, FORMULA, RTL, evaluate, play

IN_CI = os.environ.get("CI", "").lower() == "true"
# Every sheet to its own CSV file (the last token, -1), UTF-8 (76), comma separated (44).
ALL_SHEETS_CSV = "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false,-1"


def soffice() -> str:
    found = shutil.which("soffice")
    if found:
        return found
    message = "LibreOffice (soffice) is not installed: apt-get install -y libreoffice-calc-nogui"
    if IN_CI:
        pytest.fail(f"CI=true but {message}")
    pytest.skip(message)


def convert(binary: str, source: Path, target: str, outdir: Path) -> None:
    profile = (outdir / "profile").as_uri()
    result = subprocess.run(
        [
            binary,
            f"-env:UserInstallation={profile}",
            "--headless",
            "--convert-to",
            target,
            "--outdir",
            str(outdir),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_libreoffice_reads_every_sheet_as_pdf_and_csv(client: TestClient, tmp_path: Path) -> None:
    binary = soffice()
    played = play(client)
    evaluate(client, played)
    response = client.get(
        f"/api/exercises/{played.exercise.id}/export.xlsx", headers=played.headers
    )
    source = tmp_path / "debrief.xlsx"
    source.write_bytes(response.content)

    convert(binary, source, "pdf", tmp_path)
    reader = PdfReader(tmp_path / "debrief.pdf")
    text = "".join(page.extract_text() for page in reader.pages)
    for expected in (
        "演習の概要",
        "Drill",
        "想定される発表内容",
        "担当などの確認",
        "広報部長",
        "PR was named at once",
        "No legal contact",
    ):
        assert expected in text, expected
    # Landscape A4 pages: wider than tall.
    box = reader.pages[0].mediabox
    assert float(box.width) > float(box.height)

    convert(binary, source, ALL_SHEETS_CSV, tmp_path)
    sheets = {path.stem.removeprefix("debrief-"): path for path in tmp_path.glob("debrief-*.csv")}
    assert {"概要", "Red", "Blue", "比較", "担当マップ", "評価", "改善計画", "タイムライン"} <= set(
        sheets
    )
    with sheets["Red"].open(encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0][0] == "想定されるインシデント" and rows[1][:4] == [
        "No",
        "インシデント",
        "情報元",
        "受付部門",
    ]
    red_answers = rows[2]
    # The formula-looking answer is shown as typed, not evaluated; emoji and right-to-left text survive.
    assert FORMULA in red_answers and EMOJI in red_answers and RTL in red_answers
    assert "beforeafter" in red_answers
    with sheets["比較"].open(encoding="utf-8") as handle:
        comparison = handle.read()
    assert "Blue overview" in comparison and "（未配信）" in comparison
