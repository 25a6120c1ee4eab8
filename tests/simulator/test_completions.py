import openai


def test_prompts_n_echo_stop_and_max_tokens(client: openai.OpenAI) -> None:
    done = client.completions.create(model="m", prompt=["first one", "second"], n=2)
    assert [c.index for c in done.choices] == [0, 1, 2, 3]
    assert done.choices[0].text.startswith(" Simulated answer to: first one")
    assert done.choices[2].text.startswith(" Simulated answer to: second")
    echoed = client.completions.create(model="m", prompt="Say hi", echo=True, max_tokens=3)
    assert echoed.choices[0].text == "Say hi Simulated answer to:"
    assert echoed.choices[0].finish_reason == "length"
    stopped = client.completions.create(model="m", prompt="Say hi", stop="answer")
    assert stopped.choices[0].text == " Simulated " and stopped.choices[0].finish_reason == "stop"
    assert done.usage is not None and done.usage.prompt_tokens == 3


def test_stream_reassembles(client: openai.OpenAI) -> None:
    whole = client.completions.create(model="m", prompt="Stream me")
    chunks = list(client.completions.create(model="m", prompt="Stream me", stream=True))
    assert "".join(c.choices[0].text for c in chunks) == whole.choices[0].text
    assert chunks[-1].choices[0].finish_reason == "stop"
