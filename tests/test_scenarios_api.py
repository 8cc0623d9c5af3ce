"""The scenario library as the API serves it."""

from fastapi.testclient import TestClient

from tests.factories import login

# The ten incidents, verbatim from the workshop table (workshop-format.md).
JNSA_TITLES_JA = [
    "標的型攻撃で機密情報が漏れた可能性があることが、外部からの連絡で判明した",
    "ハッカーの侵入を受けて、すべてのメールがインターネットに公開されたと連絡が入った",
    "WEBページから顧客情報が閲覧可能な状態にあると連絡",
    "自社にしか登録をしていない「メールアドレスに広告が入った」とのクレームが、今日になって入った",
    "顧客から、弊社にしか登録をしていない「クレジットカードが勝手に使われた」とのクレームが入った",
    "インターネット上の掲示板に弊社の顧客情報を含むドキュメントが掲載されている",
    "自社が所有するIPアドレスから攻撃を受けているとのクレームが入った",
    "自社のメールアカウントを使った、標的メールが取引先に送信された",
    "業務システムから、機密情報が社外に持ち出された",
    "サービスで提供をしているWebサーバが、ミドルウエアの脆弱性を悪用され、改ざんをされた",
]


def test_the_ten_jnsa_incidents_are_served_verbatim(client: TestClient) -> None:
    response = client.get("/api/scenarios", headers=login(client))
    assert response.status_code == 200
    scenarios = [s for s in response.json() if s["set"] == "jnsa-2018"]
    assert [s["id"] for s in scenarios] == [f"jnsa-2018-{n:02d}" for n in range(1, 11)]
    assert [s["no"] for s in scenarios] == list(range(1, 11))
    assert [s["title"]["ja"] for s in scenarios] == JNSA_TITLES_JA
    first = scenarios[0]
    assert first["source"] == {"ja": "JPCERT/CC", "en": "JPCERT/CC"}
    assert first["receiving"]["ja"] == "CSIRT"
    for scenario in scenarios:
        assert set(scenario) >= {
            "id",
            "set",
            "no",
            "title",
            "source",
            "receiving",
            "body",
            "followups",
        }
        assert scenario["title"]["en"] and scenario["body"]["ja"] and scenario["body"]["en"]
        assert 1 <= len(scenario["followups"]) <= 3
        for followup in scenario["followups"]:
            assert set(followup) == {"id", "after_s", "title", "body"}
            assert set(followup["title"]) == {"ja", "en"}
