"""Code generation: fenced-block extraction, the offline generator, and the Anthropic and
OpenAI-compatible generators through their official SDKs against a loopback fake."""

from __future__ import annotations

import ast

import pytest

from corral.mediagateway import AGENTS, CodeGenerationError, ConfigError, CodeRequest, OfflineGenerator, extract_code
from corral.mediagateway.codegen import generator_from_env
from corral.mediagateway.codegen.anthropic_gen import AnthropicGenerator
from corral.mediagateway.codegen.openai_gen import OpenAIGenerator

from .fake_llm import FakeLLM


@pytest.fixture
def llm():
    fake = FakeLLM()
    yield fake
    fake.close()


REQUEST = CodeRequest(agent="discovery", instructions="rank titles", inputs_example={"query": "sci-fi"},
                      result_schema={"type": "object"})


def test_extract_prefers_the_requested_language_and_the_longest_block():
    text = "Here:\n```bash\nls\n```\n```python\nx = 1\n```\nand\n```py\nx = 1\ny = 2\n```\ndone"
    assert extract_code(text) == "x = 1\ny = 2\n"
    assert extract_code(text, "bash") == "ls\n"


def test_extract_without_fence_takes_the_answer_and_refuses_empty():
    assert extract_code("print(1)") == "print(1)\n"
    with pytest.raises(CodeGenerationError):
        extract_code("```python\n\n```")


async def test_offline_generator_has_a_valid_program_for_every_agent():
    gen = OfflineGenerator()
    for name in AGENTS:
        code = await gen.generate(CodeRequest(agent=name, instructions="x"))
        ast.parse(code)
        assert "/output/results.json" in code and "/data/inputs.json" in code
    with pytest.raises(CodeGenerationError):
        await gen.generate(CodeRequest(agent="nobody", instructions="x"))


async def test_anthropic_generator_speaks_the_messages_api(llm):
    llm.answers = ["Sure.\n```python\nprint('from claude')\n```"]
    gen = AnthropicGenerator(api_key="sk-ant-test", model="claude-test", base_url=llm.url)
    assert await gen.generate(REQUEST) == "print('from claude')\n"
    req = llm.requests[-1]
    assert req["path"] == "/v1/messages"
    # The SDK sends the key as a bearer token (older versions used x-api-key).
    headers = req["headers"]
    assert headers.get("authorization") == "Bearer sk-ant-test" or headers.get("x-api-key") == "sk-ant-test"
    assert req["body"]["model"] == "claude-test" and "sandboxed" in req["body"]["system"]
    assert "rank titles" in req["body"]["messages"][0]["content"]


async def test_anthropic_repair_prompt_carries_the_error(llm):
    gen = AnthropicGenerator(api_key="k", base_url=llm.url)
    await gen.generate(REQUEST, previous_code="raise ValueError('boom')", error="ValueError: boom")
    prompt = llm.requests[-1]["body"]["messages"][0]["content"]
    assert "ValueError: boom" in prompt and "raise ValueError('boom')" in prompt


async def test_anthropic_api_error_is_a_generation_error(llm):
    llm.status = 400
    with pytest.raises(CodeGenerationError, match="Anthropic"):
        await AnthropicGenerator(api_key="k", base_url=llm.url).generate(REQUEST)


async def test_openai_generator_speaks_chat_completions(llm):
    llm.answers = ["```python\nprint('from a local model')\n```"]
    gen = OpenAIGenerator(model="qwen-coder", base_url=llm.url + "/v1", api_key="none")
    assert await gen.generate(REQUEST) == "print('from a local model')\n"
    req = llm.requests[-1]
    assert req["path"] == "/v1/chat/completions"
    assert req["body"]["model"] == "qwen-coder"
    assert [m["role"] for m in req["body"]["messages"]] == ["system", "user"]


async def test_openai_api_error_is_a_generation_error(llm):
    llm.status = 500
    with pytest.raises(CodeGenerationError, match="OpenAI"):
        await OpenAIGenerator(model="m", base_url=llm.url + "/v1").generate(REQUEST)


async def test_selection_by_environment(llm):
    assert isinstance(generator_from_env({}), OfflineGenerator)
    gen = generator_from_env({"MEDIA_GATEWAY_CODEGEN": "anthropic", "ANTHROPIC_API_KEY": "k", "ANTHROPIC_BASE_URL": llm.url,
                              "ANTHROPIC_MODEL": "claude-x"})
    assert isinstance(gen, AnthropicGenerator) and gen.model == "claude-x"
    await gen.generate(REQUEST)
    assert llm.requests[-1]["body"]["model"] == "claude-x"
    gen = generator_from_env({"MEDIA_GATEWAY_CODEGEN": "openai", "OPENAI_BASE_URL": llm.url + "/v1", "OPENAI_MODEL": "m"})
    assert isinstance(gen, OpenAIGenerator)
    await gen.generate(REQUEST)
    assert llm.requests[-1]["path"] == "/v1/chat/completions"


@pytest.mark.parametrize("env,field", [
    ({"MEDIA_GATEWAY_CODEGEN": "anthropic"}, "ANTHROPIC_API_KEY"),
    ({"MEDIA_GATEWAY_CODEGEN": "openai"}, "OPENAI_MODEL"),
    ({"MEDIA_GATEWAY_CODEGEN": "gpt"}, "MEDIA_GATEWAY_CODEGEN"),
])
def test_selection_errors(env, field):
    with pytest.raises(ConfigError) as err:
        generator_from_env(env)
    assert err.value.field == field
