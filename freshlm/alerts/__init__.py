"""Slack alerts: messages built for triage (:mod:`.messages`), a sender that never fails the
pipeline (:mod:`.sender`) and the task failure callback (:mod:`.callbacks`)."""
