"""The Slack alert of a version the server could not load: it keeps serving the old one."""

from __future__ import annotations

from freshlm.alerts.blocks import MAX_TEXT_CHARS, clip, esc, fields, header, section
from freshlm.alerts.messages import SlackMessage


def load_failed_alert(
    *, wanted: str, serving: str | None, error: str, actor: str, server_url: str
) -> SlackMessage:
    """What failed to load, what is served instead, and what to do."""
    still = f"`{esc(serving)}`" if serving else "nothing (no version loaded yet)"
    blocks = [
        header(f":warning: FreshLM server could not load model version {wanted[:8]}"),
        fields(
            [
                ("Wanted", f"`{esc(wanted)}`"),
                ("Still serving", still),
                ("Asked by", esc(actor)),
                ("Server", esc(server_url)),
            ]
        ),
        section("*Error*\n```" + esc(clip(error, 1500)) + "```"),
        section(
            "*Next steps*\n"
            "1. Users are unaffected: the server answers with the version above.\n"
            "2. If the error says the stored version is damaged, roll `production` back with "
            "`freshlm_rollback` (the alias and the served model then agree again) and republish "
            "the version from its training run.\n"
            "3. If it is a resource problem (memory, disk for the model cache), fix it and "
            "trigger `freshlm_deploy` to load the version again."
        ),
    ]
    text = (
        f"FreshLM server could not load model version {wanted}; still serving "
        f"{serving or 'nothing'}: {error.splitlines()[0] if error else 'no error text'}"
    )
    return SlackMessage(text=clip(text, MAX_TEXT_CHARS), blocks=blocks)
