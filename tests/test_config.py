from pathlib import Path

import pytest

from pagehop.config import ConfigError, load_settings


def test_defaults_are_the_embedded_deployment() -> None:
    settings = load_settings()
    assert settings.workspace == Path(".pagehop")
    assert settings.graph_store == "networkx"
    assert settings.page_index == "local"
    assert not settings.llm_configured
    assert settings.ingest.docpruner_k == -0.25


def test_toml_then_env_then_arguments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml = tmp_path / "pagehop.toml"
    toml.write_text(
        'workspace = "/data/ws"\ngraph_store = "neo4j"\n'
        '[neo4j]\nuri = "bolt://db:7687"\npassword = "from-toml"\n'
        '[llm]\nbase_url = "http://gpu:8000/v1"\n[ingest]\ndpi = 200\n'
    )
    settings = load_settings(toml)
    assert settings.workspace == Path("/data/ws")
    assert settings.neo4j.uri == "bolt://db:7687"
    assert settings.neo4j.password is not None
    assert settings.neo4j.password.get_secret_value() == "from-toml"
    assert settings.llm_configured
    assert settings.ingest.dpi == 200

    monkeypatch.setenv("PAGEHOP_NEO4J__URI", "neo4j://cluster:7687")
    monkeypatch.setenv("PAGEHOP_INGEST__DPI", "300")
    settings = load_settings(toml, workspace=tmp_path / "override")
    assert settings.neo4j.uri == "neo4j://cluster:7687"
    assert settings.ingest.dpi == 300
    assert settings.workspace == tmp_path / "override"


def test_pagehop_config_env_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml = tmp_path / "other.toml"
    toml.write_text("[models]\npage_encoder = '/models/colmodernvbert'\n")
    monkeypatch.setenv("PAGEHOP_CONFIG", str(toml))
    assert load_settings().models.page_encoder == "/models/colmodernvbert"


@pytest.mark.parametrize(
    ("toml", "env", "message"),
    [
        ('graph_store = "neo4j"\n', {}, "neo4j.uri is empty"),
        ("", {"PAGEHOP_GRAPH_STORE": "oracle"}, "graph_store"),
        ("[ingest]\ndpi = 5\n", {}, "ingest.dpi"),
        ("unknown_key = 1\n", {}, "unknown_key"),
        ("this is not toml", {}, "could not read configuration"),
    ],
)
def test_broken_configuration_says_what_to_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, toml: str, env: dict[str, str], message: str
) -> None:
    path = tmp_path / "pagehop.toml"
    path.write_text(toml)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError, match=message):
        load_settings(path)


def test_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")


def test_the_readme_example_configuration_loads(tmp_path: Path) -> None:
    import re

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    example = re.search(r"```toml\n(.*?)```", readme, re.S)
    assert example is not None
    path = tmp_path / "pagehop.toml"
    path.write_text(example.group(1))
    settings = load_settings(path)
    assert settings.graph_store == "networkx"
    assert settings.llm.base_url == "http://127.0.0.1:8000/v1"
    assert settings.agent.max_llm_calls == 12
