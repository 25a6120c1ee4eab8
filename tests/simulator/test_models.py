import openai


def test_list_and_retrieve(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert ids == ["sim-chat", "sim-code", "sim-embed", "sim-image", "sim-tts", "sim-stt"]
    model = client.models.retrieve("org/anything-at-all")
    assert (model.id, model.object, model.owned_by) == ("org/anything-at-all", "model", "llmops-sim")
