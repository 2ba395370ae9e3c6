"""The README's client guides agree with chatmock and with the client tests that run them.

tests/acceptance/clients/ runs these snippets against a real server, but only where
the clients can be installed (`pytest -m clients`). These checks need no client:
every snippet parses, points at chatmock's default address with the path its dialect
uses, names models chatmock knows, and has the parts the client tests rely on.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from pathlib import Path

import pytest
import yaml

from chatmock.catalog import STATIC_MODELS, Catalog
from tests.acceptance.clients import installs
from tests.acceptance.clients.guides import GUIDE_ADDRESS, block, exported, guide_sections

BASE = f"http://{GUIDE_ADDRESS}"
OPENAI_BASE = f"{BASE}/v1"
CLIENTS_TESTS = Path(installs.__file__).parent
GUIDES = ["Claude Code", "Codex CLI", "OpenAI and Anthropic SDKs",
          "Open WebUI and other Ollama clients", "Cursor, Continue and Cline", "opencode",
          "aider", "LiteLLM as a front"]


def known_model(name: str) -> bool:
    return Catalog(STATIC_MODELS).resolve(name).spec is not None


def test_every_client_has_its_guide_in_order() -> None:
    assert list(guide_sections()) == GUIDES


@pytest.mark.parametrize("title", GUIDES)
def test_guides_point_at_the_default_address_only(title: str) -> None:
    """Every loopback URL is chatmock's default one (the tests replace exactly that),
    except the LiteLLM proxy's own port."""
    section = guide_sections()[title]
    addresses = set(re.findall(r"(?:127\.0\.0\.1|localhost):\d+", section))
    assert addresses <= {GUIDE_ADDRESS, "127.0.0.1:4000"}, addresses
    assert GUIDE_ADDRESS in section


def test_claude_code_gets_the_variables_chatmock_reads() -> None:
    variables = exported(block("Claude Code", "sh").text)
    assert variables["ANTHROPIC_BASE_URL"] == BASE  # the SDK adds /v1/messages itself
    assert "ANTHROPIC_API_KEY" in variables
    assert variables["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "1"


def test_the_codex_config_names_a_responses_provider_at_chatmock() -> None:
    text = block("Codex CLI", "toml").text
    config = tomllib.loads(text)
    provider = config["model_providers"][config["model_provider"]]
    assert provider["base_url"] == OPENAI_BASE
    assert provider["wire_api"] == "responses"
    assert "supports_websockets = false" in text  # the WebSocket test switches this line
    section = guide_sections()["Codex CLI"]
    assert f"export {provider['env_key']}=" in section  # the variable the key comes from
    assert "supports_websockets = true" in section
    assert known_model(config["model"])


def test_the_sdk_snippets_use_each_dialects_base_url() -> None:
    for lang in ("python", "js"):
        text = block("OpenAI and Anthropic SDKs", lang).text
        assert text.count("Hello!") == 2  # one prompt per SDK, made unique by the test
        assert re.findall(r"base_?url[=:]\s*\"([^\"]+)\"", text, re.IGNORECASE) == [
            OPENAI_BASE, BASE]
        models = re.findall(r"model[=:]\s*\"([^\"]+)\"", text)
        assert models == ["gpt-5.4", "claude-sonnet-5"]


def test_the_opencode_config_lists_the_models_it_uses() -> None:
    config = json.loads(block("opencode", "json").text)
    for key in ("model", "small_model"):
        provider, model = config[key].split("/", 1)
        assert model in config["provider"][provider]["models"]
        assert known_model(model)
    [provider] = config["provider"].values()
    assert provider["options"]["baseURL"] == OPENAI_BASE


def test_the_continue_config_uses_the_openai_route() -> None:
    [model] = yaml.safe_load(block("Cursor, Continue and Cline", "yaml").text)["models"]
    assert model["provider"] == "openai" and model["apiBase"] == OPENAI_BASE
    assert known_model(model["model"]) and "chat" in model["roles"]


def test_the_cline_commands_use_the_openai_route() -> None:
    auth = shlex.split(block("Cursor, Continue and Cline", "sh").text.splitlines()[0])
    options = dict(zip(auth[2::2], auth[3::2], strict=False))
    assert auth[:2] == ["cline", "auth"] and options["-p"] == "openai"
    assert options["-b"] == OPENAI_BASE and known_model(options["-m"])


def test_the_aider_command_uses_the_openai_route() -> None:
    argv = shlex.split(block("aider", "sh").text.replace("\\\n", " "))
    options = dict(zip(argv[1::2], argv[2::2], strict=False))
    assert argv[0] == "aider" and options["--openai-api-base"] == OPENAI_BASE
    provider, model = options["--model"].split("/", 1)
    assert provider == "openai" and known_model(model)


def test_the_litellm_config_reaches_both_dialects() -> None:
    config = yaml.safe_load(block("LiteLLM as a front", "yaml").text)
    bases = {entry["litellm_params"]["model"].split("/")[0]: entry["litellm_params"]["api_base"]
             for entry in config["model_list"]}
    assert bases == {"openai": OPENAI_BASE, "anthropic": BASE}
    names = [entry["model_name"] for entry in config["model_list"]]
    assert names == ["gpt-5.4", "claude-sonnet"]  # what test_litellm.py asks the proxy for


def test_every_installable_client_has_a_test() -> None:
    """Each group of installs.GROUPS is used by a client test, and nothing else is."""
    used = {match for path in CLIENTS_TESTS.glob("test_*.py")
            for match in re.findall(r'installs\.ensure\("([\w-]+)"\)', path.read_text())}
    assert used == set(installs.GROUPS)


def test_client_tests_are_marked() -> None:
    """Every test that installs a client is deselected from the default run."""
    for path in CLIENTS_TESTS.glob("test_*.py"):
        text = path.read_text()
        if "installs.ensure(" in text:
            assert ("pytestmark = pytest.mark.clients" in text
                    or text.count("@pytest.mark.clients") == text.count("installs.ensure(")), path
