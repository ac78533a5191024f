"""Slack alerts: messages built for triage (:mod:`.messages`, Block Kit pieces and URL buttons in
:mod:`.blocks`), their fixed phrases in English and Korean (:mod:`.texts`), console pages for
stored files (:mod:`.pages`; the URLs themselves in :mod:`.links`), a sender that never fails the
pipeline (:mod:`.sender`), the task failure callback (:mod:`.callbacks`) and the nightly
deadline (:mod:`.deadline`)."""
