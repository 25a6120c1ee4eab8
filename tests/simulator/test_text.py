from simulator.text import answer_text, count_tokens, pieces, token_logprob, truncate


def test_answer_is_deterministic_and_quotes_the_prompt() -> None:
    first = answer_text("What is the capital of France?")
    assert first == answer_text("What is the capital of France?")
    assert first.startswith("Simulated answer to: What is the capital of France?")
    assert first != answer_text("What is the capital of France?", seed=7)
    assert first != answer_text("What is the capital of France?", index=1)


def test_answer_keeps_only_thirty_prompt_words_and_notes_media() -> None:
    prompt = " ".join(f"w{i}" for i in range(50))
    answer = answer_text(prompt, images=2, audio=1)
    assert "w29" in answer and "w30" not in answer
    assert "[saw 2 image(s) and 1 audio part(s)]" in answer


def test_pieces_rejoin_exactly_and_count_whitespace_tokens() -> None:
    text = 'one  two\nthree {"a": 1}'
    assert "".join(pieces(text)) == text
    assert len(pieces(text)) == count_tokens(text) == 5


def test_truncate_prefers_earliest_stop_then_length() -> None:
    assert truncate("a b STOP c", ("STOP",), None).text == "a b "
    cut = truncate("a b STOP c", ("c", "STOP"), None)
    assert (cut.finish_reason, cut.stop_sequence) == ("stop", "STOP")
    assert truncate("a b c d", (), 2).text == "a b"
    assert truncate("a b c d", (), 2).finish_reason == "length"
    assert truncate("a b", (), 2).finish_reason == "stop"


def test_token_logprob_shape() -> None:
    entry = token_logprob(" word", 3)
    assert entry["token"] == " word" and entry["bytes"] == list(b" word")
    assert entry["logprob"] <= 0
    assert len(entry["top_logprobs"]) == 3
    assert entry["top_logprobs"][0]["token"] == " word"
    assert token_logprob(" word", 0)["top_logprobs"] == []
