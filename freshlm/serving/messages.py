"""The Slack alert of a version the server could not load: it keeps serving the old one."""

from __future__ import annotations

from freshlm.alerts.blocks import (
    MAX_TEXT_CHARS,
    actions,
    button,
    clip,
    esc,
    fields,
    header,
    section,
)
from freshlm.alerts.links import models_url, rollback_url
from freshlm.alerts.messages import SlackMessage
from freshlm.alerts.texts import t


def load_failed_alert(
    *, wanted: str, serving: str | None, error: str, actor: str, server_url: str
) -> SlackMessage:
    """What failed to load, what is served instead, what to do, and buttons to the models page
    and the Roll back form."""
    still = f"`{esc(serving)}`" if serving else t("serve.nothing")
    blocks = [
        header(t("serve.header", version=wanted[:8])),
        fields(
            [
                (t("serve.wanted"), f"`{esc(wanted)}`"),
                (t("serve.still"), still),
                (t("serve.asked_by"), esc(actor)),
                (t("serve.server"), esc(server_url)),
            ]
        ),
        section(f"*{t('error')}*\n```" + esc(clip(error, 1500)) + "```"),
        *actions(
            [
                button(t("button.models"), models_url(), style="primary"),
                button(t("button.rollback"), rollback_url(), style="danger"),
            ]
        ),
        section(
            f"*{t('next_steps')}*\n"
            + "\n".join(t(key) for key in ("serve.step1", "serve.step2", "serve.step3"))
        ),
    ]
    text = (
        f"FreshLM server could not load model version {wanted}; still serving "
        f"{serving or 'nothing'}: {error.splitlines()[0] if error else 'no error text'}"
    )
    return SlackMessage(text=clip(text, MAX_TEXT_CHARS), blocks=blocks)
