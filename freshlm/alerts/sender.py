"""Send a :class:`~freshlm.alerts.messages.SlackMessage` through the Airflow Slack provider.

One connection id (``settings.slack_conn_id``, default ``freshlm_slack``) and its type decide
the route:

* ``conn_type="slack"`` — Web API (``chat.postMessage``) via ``SlackHook``: the bot token in
  ``password``; ``extra.channel`` the channel (default ``#freshlm-alerts``); ``extra.base_url``
  an API base other than ``https://slack.com/api/`` (the sandbox world:
  ``http://127.0.0.1:<port>/api/``); ``extra.timeout`` seconds.
* ``conn_type="slackwebhook"`` — incoming webhook via ``SlackWebhookHook``: ``password`` is the
  webhook path ``T…/B…/…`` with ``host`` the endpoint (default ``hooks.slack.com/services``;
  the sandbox: ``http://127.0.0.1:<port>/services``), or ``password`` is the full webhook URL.

For example, in the environment::

    AIRFLOW_CONN_FRESHLM_SLACK='{"conn_type": "slack", "password": "xoxb-…",
        "extra": {"base_url": "http://127.0.0.1:8766/api/", "channel": "#freshlm-alerts"}}'
    AIRFLOW_CONN_FRESHLM_SLACK='{"conn_type": "slackwebhook",
        "host": "http://127.0.0.1:8766/services", "password": "T0…/B0…/secret"}'

Contract: :func:`send_slack` never raises and never logs a secret. A missing connection, a
Slack outage, a bad token or any other error is one WARNING line (without the token or webhook
URL) and a ``False`` return: an alert that cannot be sent must not fail the pipeline it reports
on.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from freshlm.alerts.messages import SlackMessage

log = logging.getLogger(__name__)
# slack_sdk logs through the logger it is given; at INFO it prints retried request URLs, which
# for a webhook contain the secret. It gets this logger, which masks the secrets in every record.
client_log = logging.getLogger("freshlm.alerts.slack_client")
DEFAULT_CHANNEL = "#freshlm-alerts"
DEFAULT_TIMEOUT_S = 10
MASK = "***"


def send_slack(
    message: SlackMessage,
    conn_id: str | None = None,
    *,
    channel: str | None = None,
    timeout_s: int = DEFAULT_TIMEOUT_S,
) -> bool:
    """Post ``message`` through connection ``conn_id`` (default: ``settings.slack_conn_id``).

    ``channel`` overrides the connection's ``extra.channel`` (Web API only; a webhook posts
    where it was installed). Returns True when Slack accepted the message, False otherwise;
    never raises.
    """
    secrets: list[str] = []
    try:
        if conn_id is None:
            from freshlm.settings import get_settings

            conn_id = get_settings().slack_conn_id
        conn = _connection(conn_id)
        if conn is None:
            return False
        secrets = _secrets_of(conn)
        _mask_in_airflow_logs(secrets)
        conn_type = (conn.conn_type or "").lower()
        with _RedactingFilter(secrets).installed_on(client_log):
            if conn_type == "slack":
                _send_web_api(conn_id, conn, message, channel, timeout_s)
            elif conn_type == "slackwebhook":
                _send_webhook(conn_id, message, timeout_s)
            else:
                log.warning(
                    "Slack alert not sent: connection %r has type %r; expected 'slack' (Web API) "
                    "or 'slackwebhook' (incoming webhook)",
                    conn_id,
                    conn.conn_type,
                )
                return False
    except Exception as exc:
        log.warning(
            "Slack alert not sent through connection %r: %s: %s",
            conn_id,
            type(exc).__name__,
            redact(str(exc), secrets) or "(no message)",
        )
        return False
    log.info("Slack alert sent through connection %r", conn_id)
    return True


def _connection(conn_id: str) -> Any:
    from airflow.providers.common.compat.sdk import AirflowNotFoundException, BaseHook

    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        log.warning(
            "Slack alert not sent: no Airflow connection %r (define it in the UI or as "
            "AIRFLOW_CONN_%s)",
            conn_id,
            conn_id.upper(),
        )
        return None


def _send_web_api(
    conn_id: str, conn: Any, message: SlackMessage, channel: str | None, timeout_s: int
) -> None:
    from airflow.providers.slack.hooks.slack import SlackHook

    extra = conn.extra_dejson or {}
    target = channel or extra.get("channel") or DEFAULT_CHANNEL
    hook = SlackHook(slack_conn_id=conn_id, timeout=timeout_s, logger=client_log)
    # Raises SlackApiError when Slack answers ok=false (invalid_auth, channel_not_found, ...).
    hook.call("chat.postMessage", json={"channel": target, **message.payload()})


def _send_webhook(conn_id: str, message: SlackMessage, timeout_s: int) -> None:
    from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook

    hook = SlackWebhookHook(slack_webhook_conn_id=conn_id, timeout=timeout_s, logger=client_log)
    # Raises AirflowException on any answer but HTTP 200.
    hook.send(text=message.text, blocks=message.blocks)


def _secrets_of(conn: Any) -> list[str]:
    """The strings that must never be logged: the token / webhook secret and, for a webhook,
    every URL form that embeds it."""
    password = (conn.password or "").strip()
    if not password:
        return []
    secrets = [password]
    if "://" not in password:
        host = (conn.host or "").rstrip("/")
        if host:
            secrets.append(f"{host}/{password.lstrip('/')}")
    # Webhook secrets are the last path segment; alone they are still a credential.
    last = password.rstrip("/").rsplit("/", 1)[-1]
    if len(last) >= 8 and last != password:
        secrets.append(last)
    return sorted(set(secrets), key=len, reverse=True)


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text


def _mask_in_airflow_logs(secrets: list[str]) -> None:
    # Inside a task, Airflow's own masker then hides the secrets in the task log too.
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # pragma: no cover - older Airflow
        return
    for secret in secrets:
        mask_secret(secret)


class _RedactingFilter(logging.Filter):
    """Rewrites each record's message with the secrets masked (applied on the logger)."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            record.msg = redact(record.getMessage(), self.secrets)
            record.args = None
        return True

    def installed_on(self, logger: logging.Logger) -> _Installed:
        return _Installed(self, logger)


class _Installed:
    def __init__(self, flt: logging.Filter, logger: logging.Logger) -> None:
        self.flt, self.logger = flt, logger

    def __enter__(self) -> None:
        self.logger.addFilter(self.flt)

    def __exit__(self, *exc: object) -> None:
        self.logger.removeFilter(self.flt)
