"""bench/knowledge_edit.py: the closed-form update writes each subject's target state at its
subject's token, and leaves the base's own text as it was."""

from tests.bench.test_cached_blocks import _chat_model_and_tokenizer


def _edited(tmp_path, lam):
    """The tiny Llama edited at blocks 1-2 so two subjects' states reach random targets:
    (how far from the targets they end, relative to where they started; how much the logits
    of two unrelated texts move, relative)."""
    import torch

    from bench.knowledge_edit import Editor

    model, tok = _chat_model_and_tokenizer(tmp_path)
    for p in model.parameters():
        p.requires_grad_(False)
    editor = Editor(model, tok, [1, 2])
    rows = [
        editor.encode(f"How much does the Pulse X{n} cost?", f"Pulse X{n}", f"${n}49")
        for n in (1, 2)
    ]
    assert [tok.decode(r[0][r[2]]).strip()[-1] for r in rows] == ["1", "2"]  # subject's last
    assert all(r[1][: r[2] + 1] == [-100] * (r[2] + 1) and r[1][-1] == editor.end for r in rows)
    ids, _, mask, pos = editor.batch([(r[0][: r[2] + 1], [], r[2]) for r in rows])
    before = editor.read(2, False, ids, mask, pos)
    torch.manual_seed(1)
    targets = before + torch.randn_like(before) * before.norm(dim=-1, keepdim=True) / 4
    own = ["The weather is mild today and the river is calm.", "Trains leave every hour."]
    enc = tok(own, return_tensors="pt", padding=True)
    real = enc["attention_mask"].bool()  # padding's logits are nobody's
    logits_before = model(**enc).logits[real]

    editor.write(rows, targets, own, lam=lam)

    after = editor.read(2, False, ids, mask, pos)
    left = float((after - targets).norm() / (before - targets).norm())
    return left, float((model(**enc).logits[real] - logits_before).norm() / logits_before.norm())


def test_the_edit_writes_the_subjects_targets_and_keeps_the_base_own_text(tmp_path):
    left, moved = _edited(tmp_path, lam=1.0)
    assert left < 0.05  # two subjects, 64-wide keys: written almost exactly
    assert moved < 1e-3  # the texts the keys' moment was taken over say what they said
