"""The base model the Airflow tests bootstrap: small enough to build in seconds, big enough to
learn a day's documents (the demo's 4.2M-parameter default takes minutes to pretrain).

Bootstrap it as the demo does, archive published as the base corpus first:
``sandbox.base_model.bootstrap_demo_base(store, config=SMALL_BASE)``."""

from __future__ import annotations

from training.bootstrap import BootstrapConfig, ModelConfig, PretrainConfig

#: ~0.5M parameters, a 1,024-token vocabulary and 128 positions, 150 pretraining steps.
SMALL_BASE = BootstrapConfig(
    model=ModelConfig(vocab_size=1024, n_layer=2, n_embd=128, n_head=4, n_positions=128),
    pretrain=PretrainConfig(steps=150, seq_len=128, batch=16, lr=3e-3, warmup_steps=15),
)
