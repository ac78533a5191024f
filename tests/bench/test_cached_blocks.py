"""bench/knowledge_recipes.py keeps the frozen blocks' outputs in its home: a trial that reads
them trains the same model as the trial that computed them."""


def _chat_model_and_tokenizer(tmp_path):
    """A 4-block Llama and a byte-level tokenizer with the chat template's turn markers."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from tests.training.test_trainset import make_tiny_model

    tokenizer = AutoTokenizer.from_pretrained(str(make_tiny_model(tmp_path / "gpt2")))
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
    )  # fmt: skip
    return LlamaForCausalLM(config).eval(), tokenizer


def test_a_trial_that_reads_the_cached_blocks_scores_as_the_one_that_computed_them(tmp_path):
    import copy

    import torch

    from bench.knowledge_recipes import Trial, parse_args

    model, tokenizer = _chat_model_and_tokenizer(tmp_path)
    texts = [
        f"<|im_start|>user\nWhat does the Pulse X{n} cost?<|im_end|>\n"
        f"<|im_start|>assistant\n${n}49<|im_end|>"
        for n in range(1, 6)
    ]
    args = parse_args(["--layers", "2", "--answer-only", "--batch", "2"])
    home = tmp_path / "home"
    home.mkdir()
    rows = [0, 3]

    def head_logits(trial):
        with torch.no_grad():
            return trial.scored_logits(rows)[0]

    computed = Trial(copy.deepcopy(model), tokenizer, texts, [], args)
    computed.cache_bottom(home)  # written to the home
    read = Trial(copy.deepcopy(model), tokenizer, texts, [], args)
    read.cache_bottom(home)  # read from it
    assert len(list(home.glob("bottom-*.pt"))) == 1
    assert torch.allclose(head_logits(read), head_logits(computed), atol=1e-5)
    # and both are the whole model's logits at the answers' positions
    ids = torch.tensor([computed.ids[rows[0]]])
    with torch.no_grad():
        full = model(input_ids=ids).logits[0, :-1]
    scored = torch.tensor(computed.labels[rows[0]][1:]) != -100
    assert torch.allclose(head_logits(computed)[: int(scored.sum())], full[scored], atol=1e-4)
