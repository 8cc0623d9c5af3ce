"""The shipped JNSA scenario file, the scenario schema and the loader's error reports."""

import re
from pathlib import Path

import pytest

from app.scenarios.loader import (
    ScenarioFileError,
    ScenarioLibrary,
    load_scenario_dir,
    load_scenario_file,
)
from app.scenarios.schema import GUIDANCE_FIELDS, LocalizedText, Scenario

SCENARIOS_DIR = Path(__file__).resolve().parent.parent / "scenarios"
JNSA_FILE = SCENARIOS_DIR / "jnsa-2018.yaml"

# Copied from the table "The ten incidents" of shared/workshop-format.md: that table is the spec.
JNSA_TABLE = [
    (
        1,
        "標的型攻撃で機密情報が漏れた可能性があることが、外部からの連絡で判明した",
        "JPCERT/CC",
        "CSIRT",
    ),
    (
        2,
        "ハッカーの侵入を受けて、すべてのメールがインターネットに公開されたと連絡が入った",
        "メディア",
        "広報",
    ),
    (3, "WEBページから顧客情報が閲覧可能な状態にあると連絡", "個人（匿名）", "広報"),
    (
        4,
        "自社にしか登録をしていない「メールアドレスに広告が入った」とのクレームが、今日になって入った",
        "顧客",
        "ユーザサポート",
    ),
    (
        5,
        "顧客から、弊社にしか登録をしていない「クレジットカードが勝手に使われた」とのクレームが入った",
        "顧客",
        "ユーザサポート",
    ),
    (
        6,
        "インターネット上の掲示板に弊社の顧客情報を含むドキュメントが掲載されている",
        "取引先",
        "担当営業",
    ),
    (
        7,
        "自社が所有するIPアドレスから攻撃を受けているとのクレームが入った",
        "取引のない海外企業",
        "ユーザサポート",
    ),
    (
        8,
        "自社のメールアカウントを使った、標的メールが取引先に送信された",
        "官公庁",
        "大代表→広報",
    ),
    (9, "業務システムから、機密情報が社外に持ち出された", "官公庁", "大代表→広報"),
    (
        10,
        "サービスで提供をしているWebサーバが、ミドルウエアの脆弱性を悪用され、改ざんをされた",
        "官公庁",
        "大代表→広報",
    ),
]

# A space between two Japanese characters is what a folded YAML scalar leaves at a line break.
FOLDED_JAPANESE = re.compile(
    r"[\u3000-\u30ff\u4e00-\u9fff\uff00-\uffef] +[\u3000-\u30ff\u4e00-\u9fff\uff00-\uffef]"
)

# Line numbers in the assertions below refer to this file.
VALID = """\
set: demo
title:
  ja: デモ
  en: Demo
scenarios:
  - id: demo-01
    no: 1
    title:
      ja: 件名
      en: Subject
    source: {ja: 顧客, en: Customer}
    receiving: {ja: 広報, en: PR}
    body:
      ja: 本文。
      en: Body.
    followups:
      - id: demo-01-f1
        after_s: 600
        title: {ja: 続報, en: Update}
        body: {ja: 続報の本文。, en: Update body.}
    guidance:
      press: {ja: 統一見解で答える。, en: Answer with one statement.}
"""

SECOND_SCENARIO = """\
  - id: demo-02
    no: 2
    title: {ja: 二件目, en: Second}
    source: {ja: 顧客, en: Customer}
    receiving: {ja: 広報, en: PR}
    body: {ja: 本文。, en: Body.}
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def edited(old: str, new: str, text: str = VALID) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def load_error(tmp_path: Path, text: str) -> ScenarioFileError:
    path = write(tmp_path, "broken.yaml", text)
    with pytest.raises(ScenarioFileError) as caught:
        load_scenario_file(path)
    assert caught.value.path == path
    return caught.value


@pytest.fixture(scope="module")
def jnsa() -> list[Scenario]:
    return load_scenario_file(JNSA_FILE).scenarios


# --- the shipped file --------------------------------------------------------------------


def test_shipped_file_is_the_jnsa_2018_set_of_ten() -> None:
    scenario_set = load_scenario_file(JNSA_FILE)
    assert scenario_set.set_id == "jnsa-2018"
    assert [s.id for s in scenario_set.scenarios] == [f"jnsa-2018-{n:02d}" for n in range(1, 11)]
    assert [s.no for s in scenario_set.scenarios] == list(range(1, 11))


def test_shipped_directory_loads_as_the_library() -> None:
    library = load_scenario_dir(SCENARIOS_DIR)
    jnsa_ids = [s.id for set_id, s in library.all() if set_id == "jnsa-2018"]
    assert jnsa_ids == [f"jnsa-2018-{n:02d}" for n in range(1, 11)]


@pytest.mark.parametrize(("no", "title", "source", "receiving"), JNSA_TABLE)
def test_titles_sources_and_receiving_match_the_workshop_table(
    jnsa: list[Scenario], no: int, title: str, source: str, receiving: str
) -> None:
    scenario = jnsa[no - 1]
    assert scenario.no == no
    assert scenario.title.ja == title
    assert scenario.source.ja == source
    assert scenario.receiving.ja == receiving


def test_every_scenario_has_followups_and_guidance_for_all_thirteen_fields(
    jnsa: list[Scenario],
) -> None:
    assert len(GUIDANCE_FIELDS) == 13
    for scenario in jnsa:
        assert 1 <= len(scenario.followups) <= 3, scenario.id
        for index, followup in enumerate(scenario.followups, start=1):
            assert followup.id == f"{scenario.id}-f{index}"
        assert [f.after_s for f in scenario.followups] == sorted(
            f.after_s for f in scenario.followups
        )
        assert set(scenario.guidance) == set(GUIDANCE_FIELDS), scenario.id
        for field, text in scenario.guidance.items():
            assert text.ja and text.en, (scenario.id, field)


def test_followups_use_the_simulation_slide_wording(jnsa: list[Scenario]) -> None:
    assert jnsa[0].followups[0].title.ja == (
        "標的型攻撃で機密情報が漏れた可能性があることが、警察とJPCERT/CCからの連絡で判明した"
    )
    assert jnsa[3].followups[0].title.ja == (
        "自社にしか登録をしていない「メールアドレスに広告が入った」とのクレームが、今日になって３件目入った"
    )


def test_japanese_texts_have_no_folded_line_breaks(jnsa: list[Scenario]) -> None:
    texts = [
        text
        for s in jnsa
        for text in (
            s.title,
            s.body,
            *s.guidance.values(),
            *(f.title for f in s.followups),
            *(f.body for f in s.followups),
        )
    ]
    assert len(texts) > 10 * 15
    assert [t.ja for t in texts if FOLDED_JAPANESE.search(t.ja)] == []


def test_public_shape_matches_the_api_contract() -> None:
    library = load_scenario_dir(SCENARIOS_DIR)
    first = next(item for item in library.public() if item["id"] == "jnsa-2018-01")
    assert list(first) == [
        "id",
        "set",
        "no",
        "title",
        "source",
        "receiving",
        "body",
        "followups",
        "guidance",
    ]
    assert first["set"] == "jnsa-2018"
    assert first["source"] == {"ja": "JPCERT/CC", "en": "JPCERT/CC"}
    assert list(first["followups"][0]) == ["id", "after_s", "title", "body"]
    assert first["followups"][0]["id"] == "jnsa-2018-01-f1"
    assert set(first["guidance"]) == set(GUIDANCE_FIELDS)
    assert set(first["guidance"]["legal"]) == {"ja", "en"}


# --- schema and library --------------------------------------------------------------------


def test_localized_text_picks_japanese_only_for_japanese_locales() -> None:
    text = LocalizedText(ja="日本語", en="English")
    assert text.get("ja") == "日本語"
    assert text.get("ja-JP") == "日本語"
    assert text.get("en") == "English"
    assert text.get("fr") == "English"


def test_library_lookups_and_order(tmp_path: Path) -> None:
    # Files are read in name order, the library orders by set id, then scenario number.
    write(tmp_path, "a.yml", edited("set: demo", "set: zulu", edited("demo-01", "zulu-01")))
    write(tmp_path, "b.yaml", VALID.replace("    no: 1\n", "    no: 3\n") + SECOND_SCENARIO)
    library = load_scenario_dir(tmp_path)
    assert [(set_id, s.id) for set_id, s in library.all()] == [
        ("demo", "demo-02"),
        ("demo", "demo-01"),
        ("zulu", "zulu-01"),
    ]
    assert [s.set_id for s in library.sets()] == ["demo", "zulu"]
    scenario = library.get("zulu-01")
    assert scenario is not None
    assert scenario.title.en == "Subject"
    assert library.set_of("zulu-01") == "zulu"
    assert library.get("nope") is None
    assert library.set_of("nope") is None
    assert [item["id"] for item in library.public()] == ["demo-02", "demo-01", "zulu-01"]


def test_yaml_1_1_booleans_stay_strings(tmp_path: Path) -> None:
    # `no:` must stay the key "no", and a text "yes" must stay a text.
    scenario_set = load_scenario_file(write(tmp_path, "ok.yaml", edited("en: Subject", "en: yes")))
    assert scenario_set.scenarios[0].no == 1
    assert scenario_set.scenarios[0].title.en == "yes"


# --- broken files ----------------------------------------------------------------------------


def test_yaml_syntax_error_reports_its_line(tmp_path: Path) -> None:
    error = load_error(tmp_path, edited("en: Subject", "en: Subject: with a colon"))
    assert error.line == 10
    assert error.location == ""
    assert "invalid YAML" in error.message
    assert "mapping values are not allowed" in error.message  # libyaml and PyYAML word it apart
    assert str(error) == f"{error.path}:10: {error.message}"


def test_missing_japanese_text_reports_location_and_parent_line(tmp_path: Path) -> None:
    error = load_error(tmp_path, edited("      ja: 件名\n", ""))
    assert error.location == "scenarios[0].title.ja"
    assert error.line == 8
    assert error.message == "Field required"
    assert str(error) == f"{error.path}:8: scenarios[0].title.ja: Field required"


def test_blank_text_is_refused(tmp_path: Path) -> None:
    error = load_error(tmp_path, edited("      en: Body.", "      en: '   '"))
    assert error.location == "scenarios[0].body.en"
    assert error.line == 15
    assert "at least 1 character" in error.message


def test_unknown_key_is_refused(tmp_path: Path) -> None:
    error = load_error(tmp_path, edited("    no: 1\n", "    no: 1\n    colour: red\n"))
    assert error.location == "scenarios[0].colour"
    assert error.line == 8
    assert error.message == "Extra inputs are not permitted"


def test_repeated_yaml_key_is_refused(tmp_path: Path) -> None:
    error = load_error(tmp_path, edited("    no: 1\n", "    no: 1\n    no: 2\n"))
    assert error.line == 8
    assert "duplicate key 'no'" in error.message


def test_duplicate_scenario_ids_within_a_file(tmp_path: Path) -> None:
    error = load_error(tmp_path, VALID + SECOND_SCENARIO.replace("demo-02", "demo-01"))
    assert error.location == "scenarios"
    assert error.line == 5
    assert error.message == "duplicate scenario id 'demo-01' at items [0] and [1]"


def test_duplicate_scenario_numbers_within_a_file(tmp_path: Path) -> None:
    error = load_error(tmp_path, VALID + SECOND_SCENARIO.replace("no: 2", "no: 1"))
    assert error.location == "scenarios"
    assert error.message == "duplicate scenario no 1 at items [0] and [1]"


def test_duplicate_followup_ids(tmp_path: Path) -> None:
    twice = """\
      - id: demo-01-f1
        after_s: 900
        title: {ja: 再続報, en: Another update}
        body: {ja: 本文。, en: Body.}
"""
    error = load_error(tmp_path, edited("    guidance:\n", twice + "    guidance:\n"))
    assert error.location == "scenarios[0].followups"
    assert error.line == 16
    assert error.message == "duplicate followup id 'demo-01-f1' at items [0] and [1]"


def test_too_many_followups(tmp_path: Path) -> None:
    extra = "".join(
        f"      - {{id: demo-01-f{n}, after_s: 0, title: {{ja: 続報, en: Up}}, "
        f"body: {{ja: 本文。, en: Body.}}}}\n"
        for n in (2, 3, 4)
    )
    error = load_error(tmp_path, edited("    guidance:\n", extra + "    guidance:\n"))
    assert error.location == "scenarios[0].followups"
    assert "at most 3 items" in error.message


def test_duplicate_scenario_ids_across_files_name_both_files(tmp_path: Path) -> None:
    first = write(tmp_path, "a.yaml", VALID)
    second = write(tmp_path, "b.yaml", edited("set: demo", "set: other"))
    with pytest.raises(ScenarioFileError) as caught:
        load_scenario_dir(tmp_path)
    error = caught.value
    assert error.path == second
    assert error.location == "scenarios[0].id"
    assert error.line == 6
    assert error.message == f"scenario id 'demo-01' is already defined in {first}"
    assert str(first) in str(error) and str(second) in str(error)


def test_duplicate_set_ids_across_files(tmp_path: Path) -> None:
    first = write(tmp_path, "a.yaml", VALID)
    second = write(tmp_path, "b.yaml", edited("demo-01", "demo-99"))
    with pytest.raises(ScenarioFileError) as caught:
        load_scenario_dir(tmp_path)
    assert caught.value.path == second
    assert caught.value.line == 1
    assert caught.value.message == f"set 'demo' is already defined in {first}"


def test_unknown_guidance_field(tmp_path: Path) -> None:
    error = load_error(tmp_path, edited("      press:", "      bogus:"))
    assert error.location == "scenarios[0].guidance.bogus"
    assert error.line == 22
    assert "Input should be 'overview'" in error.message
    assert "'estimated_time'" in error.message


def test_negative_after_s(tmp_path: Path) -> None:
    error = load_error(tmp_path, edited("after_s: 600", "after_s: -5"))
    assert error.location == "scenarios[0].followups[0].after_s"
    assert error.line == 18
    assert error.message == "Input should be greater than or equal to 0"


def test_bad_scenario_id(tmp_path: Path) -> None:
    error = load_error(tmp_path, edited("id: demo-01\n", "id: Demo 01\n"))
    assert error.location == "scenarios[0].id"
    assert error.line == 6
    assert "should match pattern" in error.message


def test_quoted_number_is_not_a_number(tmp_path: Path) -> None:
    error = load_error(tmp_path, edited("    no: 1\n", "    no: '1'\n"))
    assert error.location == "scenarios[0].no"
    assert error.message == "Input should be a valid integer"


def test_empty_file(tmp_path: Path) -> None:
    error = load_error(tmp_path, "# nothing yet\n")
    assert "the file is empty" in error.message


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    error = load_error(tmp_path, "- just\n- a list\n")
    assert error.line == 1
    assert "expected a mapping" in error.message
    assert "got list" in error.message


def test_empty_directory(tmp_path: Path) -> None:
    write(tmp_path, "notes.txt", "not a scenario file")
    with pytest.raises(ScenarioFileError) as caught:
        load_scenario_dir(tmp_path)
    assert caught.value.path == tmp_path
    assert caught.value.message == "no scenario files (*.yaml, *.yml) in the directory"


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ScenarioFileError) as caught:
        load_scenario_dir(tmp_path / "absent")
    assert str(caught.value) == f"{tmp_path / 'absent'}: the scenario directory does not exist"


def test_one_broken_file_fails_the_whole_directory(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", VALID)
    write(tmp_path, "b.yaml", edited("set: demo", "set: other", edited("demo-01", "other-01")))
    write(tmp_path, "c.yaml", edited("      ja: 件名\n", ""))
    with pytest.raises(ScenarioFileError) as caught:
        load_scenario_dir(tmp_path)
    assert caught.value.path == tmp_path / "c.yaml"
    assert caught.value.location == "scenarios[0].title.ja"


def test_library_refuses_duplicates_when_built_directly(tmp_path: Path) -> None:
    scenario_set = load_scenario_file(write(tmp_path, "a.yaml", VALID))
    with pytest.raises(ValueError, match="set 'demo' is defined by set 'demo' and set 'demo'"):
        ScenarioLibrary([scenario_set, scenario_set])
