"""Every fixed phrase of FreshLM's Slack alerts, in English and Korean, in one place.

The language is ``FRESHLM_ALERT_LANGUAGE`` (``en`` or ``ko``). Builders ask :func:`t` for a
phrase by key and fill in the dynamic parts (ids, counts, names) themselves, escaped as before;
a phrase holds only fixed text and ``{name}`` slots, so translating never touches escaping.
Names a person types or searches for (DAG and Param names, setting names, Airflow's *Clear*)
stay as they are in both languages.
"""

from __future__ import annotations

from typing import Any

LANGUAGES = ("en", "ko")

# key -> (English, Korean)
TEXTS: dict[str, tuple[str, str]] = {
    # --- shared labels, links and buttons ---
    "dag": ("DAG", "DAG"),
    "run": ("Run", "실행"),
    "task": ("Task", "태스크"),
    "try": ("Try", "시도"),
    "try_value": ("{n} of {of}", "{of}회 중 {n}회째"),
    "error": ("Error", "오류"),
    "next_steps": ("Next steps", "다음 할 일"),
    "by": ("By", "실행자"),
    "none": ("none", "없음"),
    "nothing": ("nothing", "없음"),
    "no_links": ("(no links available)", "(링크 없음)"),
    "link.log": ("Airflow task log", "Airflow 태스크 로그"),
    "link.data_docs": ("Data Docs", "Data Docs"),
    "link.report": ("Evaluation report", "평가 보고서"),
    "button.open_log": ("Open log", "로그 열기"),
    "button.open_data_docs": ("Open Data Docs", "Data Docs 열기"),
    "button.accept_batch": ("Accept batch…", "배치 승인…"),
    "button.open_report": ("Open report", "보고서 열기"),
    "button.rollback": ("Roll back…", "롤백…"),
    "button.open_batch": ("Open batch", "배치 보기"),
    "button.freshness": ("Open freshness", "신선도 보기"),
    "button.models": ("Open models", "모델 목록 보기"),
    # --- a task that failed after its retries ---
    "task_failed.header": (
        ":red_circle: FreshLM task failed after its retries: {where}",
        ":red_circle: FreshLM 태스크가 재시도 후에도 실패했습니다: {where}",
    ),
    "task_failed.step1": (
        "1. Read the task log (button below) for the full traceback.",
        "1. 아래 버튼으로 태스크 로그를 열어 전체 트레이스백을 확인하세요.",
    ),
    "task_failed.step2": (
        "2. Fix the cause (source down, bad config, code bug), then *Clear* this task in the "
        "Airflow UI to rerun it; tasks are idempotent, a rerun of the same run is safe.",
        "2. 원인(소스 장애, 잘못된 설정, 코드 버그)을 고친 뒤 Airflow UI에서 이 태스크를 "
        "*Clear* 해 다시 실행하세요. 태스크는 멱등이라 같은 실행을 다시 돌려도 안전합니다.",
    ),
    "task_failed.text": (
        "FreshLM task failed after its retries: {where}, run {run}, try {tries}: {error}.",
        "FreshLM 태스크가 재시도 후에도 실패: {where}, 실행 {run}, 시도 {tries}: {error}.",
    ),
    # --- the data gate ---
    "gate.accepted": (
        "{severity} failures accepted by {user}",
        "{severity} 실패를 {user} 님이 승인함",
    ),
    "gate.critical": (
        "CRITICAL: batch quarantined, nothing published",
        "CRITICAL: 배치 격리, 아무것도 게시되지 않음",
    ),
    "gate.warning": ("warning: batch published", "경고: 배치는 게시됨"),
    "gate.passed": ("passed", "통과"),
    "gate.header": ("{icon} FreshLM gate {verdict}", "{icon} FreshLM 데이터 게이트 {verdict}"),
    "gate.window": ("Window", "수집 구간"),
    "gate.documents": ("Documents", "문서"),
    "gate.documents_value": (
        "{kept} kept, {quarantined} quarantined",
        "{kept}건 유지, {quarantined}건 격리",
    ),
    "gate.failed": ("Failed expectations", "실패한 기대치"),
    "gate.failed_value": (
        "{critical} critical, {warning} warning",
        "치명 {critical}건, 경고 {warning}건",
    ),
    "gate.sources": (
        "*Sources* (delivered = kept + quarantined)",
        "*소스별* (수집 = 유지 + 격리)",
    ),
    "gate.failures": (
        "*Failed expectations* (observed vs expected)",
        "*실패한 기대치* (관측값 vs 기대값)",
    ),
    "gate.quarantined": ("*Quarantined*", "*격리된 것*"),
    "gate.override_done": (
        "Nothing to do: the acceptance and its reason are recorded with the dataset.",
        "할 일 없음: 승인과 그 사유가 데이터셋에 기록되었습니다.",
    ),
    "gate.step1": (
        "1. Open the Data Docs (button below) and look at the example documents (ids above).",
        "1. 아래 버튼으로 Data Docs를 열고 예시 문서(위의 id)를 살펴보세요.",
    ),
    "gate.step2": (
        "2. *Bad data or a bug* (spam flood, scrubber miss, broken feed): fix it, then *Clear* "
        "the failed tasks of this run in the Airflow UI to rerun the window.",
        "2. *데이터가 나쁘거나 버그라면* (스팸 폭주, 개인정보 필터 누락, 깨진 피드): 고친 뒤 "
        "Airflow UI에서 이 실행의 실패한 태스크를 *Clear* 해 같은 구간을 다시 돌리세요.",
    ),
    "gate.step3": (
        "3. *Batch is fine after all*: press *Accept batch…* and give the reason, or trigger "
        '`{dag}` for this window with Params `{accept}=true` and `{reason}="why it is safe"`; '
        "the reason and your name are recorded in the dataset's manifest.",
        "3. *배치에 문제가 없다면*: *배치 승인…* 버튼을 눌러 사유를 적거나, 이 구간으로 "
        '`{dag}`를 Params `{accept}=true`, `{reason}="안전한 이유"`와 함께 실행하세요. '
        "사유와 승인자 이름이 데이터셋 매니페스트에 남습니다.",
    ),
    "gate.warned_step": (
        "The batch was published. Check the warnings in the Data Docs; if one keeps firing, "
        "fix its cause or tune the gate's thresholds (expectations/config.py).",
        "배치는 게시되었습니다. Data Docs에서 경고를 확인하고, 같은 경고가 계속 나오면 원인을 "
        "고치거나 게이트 임계값(expectations/config.py)을 조정하세요.",
    ),
    # --- promotion ---
    "promo.header": (
        ":rocket: FreshLM promoted {version} to production",
        ":rocket: FreshLM이 {version}을(를) 프로덕션으로 승격했습니다",
    ),
    "promo.production_now": ("Production now", "현재 프로덕션"),
    "promo.replaced": ("Replaced", "교체된 버전"),
    "promo.gate": ("Gate", "승격 규칙"),
    "promo.gate_value": ("all {n} rules passed", "규칙 {n}개 모두 통과"),
    "promo.skipped": (" ({n} optional not measured)", " (선택 규칙 {n}개 미측정)"),
    "promo.move": ("Move", "별칭 이동"),
    "promo.generation": ("production generation {n}", "production 세대 {n}"),
    "promo.rules": ("*Gate rules* (observed vs threshold)", "*승격 규칙* (관측값 vs 임계값)"),
    "promo.metrics": (
        "*Metrics* (candidate vs the production it replaced)",
        "*지표* (후보 vs 교체된 프로덕션)",
    ),
    "promo.misbehaves": (
        "*If it misbehaves*\nRoll production back to `{previous}` (now `previous`) with "
        "*Roll back…* and a reason; the move and the reason go to the audit log.",
        "*문제가 생기면*\n*롤백…* 버튼을 눌러 사유와 함께 프로덕션을 `{previous}`(현재 "
        "`previous`)로 되돌리세요. 이동과 사유는 감사 로그에 남습니다.",
    ),
    "reject.header": (
        ":no_entry: FreshLM candidate {version} rejected: {failed} of {n} promotion rules failed",
        ":no_entry: FreshLM 후보 {version} 거부: 승격 규칙 {n}개 중 {failed}개 실패",
    ),
    "reject.candidate": ("Candidate (rejected)", "후보 (거부됨)"),
    "reject.production": ("Production (kept)", "프로덕션 (유지)"),
    "reject.failed_rules": ("Failed rules", "실패한 규칙"),
    "reject.rules_file": ("Rules file", "규칙 파일"),
    "reject.failed_title": (
        "*Failed rules* (observed vs threshold)",
        "*실패한 규칙* (관측값 vs 임계값)",
    ),
    "reject.metrics": ("*Metrics* (candidate vs production)", "*지표* (후보 vs 프로덕션)"),
    "reject.passed": ("*Passed rules*", "*통과한 규칙*"),
    "reject.step1": (
        "1. Open the evaluation report (button below): which new facts were missed, which old "
        "ones were forgotten, where perplexity or bias moved.",
        "1. 아래 버튼으로 평가 보고서를 열어 놓친 새 사실, 잊어버린 옛 사실, 퍼플렉서티나 "
        "편향이 움직인 곳을 확인하세요.",
    ),
    "reject.step2": (
        "2. *Bad data or training* (a noisy crawl, too little replay, a bad learning rate): fix "
        "it and let the next night retrain; production keeps serving.",
        "2. *데이터나 학습 문제라면* (잡음 많은 수집, 부족한 리플레이, 잘못된 학습률): 고치고 "
        "다음 밤의 재학습을 기다리세요. 그동안 프로덕션은 계속 서비스합니다.",
    ),
    "reject.step3": (
        "3. *A threshold is wrong for this case*: change it in the rules file (`{rules}`, or "
        "point `FRESHLM_PROMOTION_RULES` at a copy), then clear this run's gate task to decide "
        "again.",
        "3. *임계값이 이 경우에 맞지 않다면*: 규칙 파일(`{rules}`, 또는 사본을 "
        "`FRESHLM_PROMOTION_RULES`로 지정)을 고친 뒤 이 실행의 게이트 태스크를 *Clear* 해 "
        "다시 판정하세요.",
    ),
    "reject.kept": (
        "The candidate stays in the registry, recorded as rejected{where}; a rollback to it is "
        "refused unless explicitly allowed.",
        "후보는 거부됨으로 기록되어 레지스트리에 남습니다{where}. 명시적으로 허용하지 않는 한 "
        "이 버전으로의 롤백은 거절됩니다.",
    ),
    "reject.kept_at": (" at `{uri}`", " (`{uri}`)"),
    "rollback.header": (
        ":rewind: FreshLM production rolled back to {version}",
        ":rewind: FreshLM 프로덕션을 {version}(으)로 롤백했습니다",
    ),
    "rollback.from": ("Rolled back from", "롤백 이전 버전"),
    "rollback.when": ("When", "시각"),
    "rollback.served_before": ("Served production before", "이전에 프로덕션이었나"),
    "yes": ("yes", "예"),
    "no": ("no", "아니요"),
    "rollback.why": ("*Why*", "*사유*"),
    "rollback.was_rejected": (
        ":warning: This version had been *rejected* by the promotion gate; the rollback was "
        "explicitly allowed (`allow_rejected`).",
        ":warning: 이 버전은 승격 게이트에서 *거부*되었던 버전입니다. 롤백이 명시적으로 "
        "허용되었습니다(`allow_rejected`).",
    ),
    "rollback.never_served": (
        ":warning: This version never served production before: it reaches production without "
        "having passed the promotion gate as a candidate.",
        ":warning: 이 버전은 한 번도 프로덕션이었던 적이 없습니다. 후보로서 승격 게이트를 "
        "통과하지 않고 프로덕션이 됩니다.",
    ),
    # --- the freshness monitor ---
    "monitor.header": (
        ":mag: FreshLM monitor: {n} problem(s) with production's freshness",
        ":mag: FreshLM 모니터: 프로덕션 신선도 문제 {n}건",
    ),
    "monitor.production": ("Production", "프로덕션"),
    "monitor.lag": ("Freshness lag", "신선도 지연"),
    "monitor.newest": ("Newest crawled", "가장 최근 수집"),
    "monitor.canaries": ("Canaries", "카나리 질문"),
    "monitor.canaries_value": ("{correct}/{asked} correct", "{asked}개 중 {correct}개 정답"),
    "monitor.not_asked": ("not asked", "묻지 않음"),
    "monitor.unknown": ("unknown", "알 수 없음"),
    "monitor.problems": ("*Problems and what to do*", "*문제와 할 일*"),
    "monitor.retrain": ("*Retraining triggered:* `{dag}`", "*재학습 실행됨:* `{dag}`"),
    # --- the model server ---
    "serve.header": (
        ":warning: FreshLM server could not load model version {version}",
        ":warning: FreshLM 서버가 모델 버전 {version}을(를) 불러오지 못했습니다",
    ),
    "serve.wanted": ("Wanted", "요청된 버전"),
    "serve.still": ("Still serving", "계속 서비스 중"),
    "serve.nothing": ("nothing (no version loaded yet)", "없음 (아직 불러온 버전 없음)"),
    "serve.asked_by": ("Asked by", "요청자"),
    "serve.server": ("Server", "서버"),
    "serve.step1": (
        "1. Users are unaffected: the server answers with the version above.",
        "1. 사용자 영향은 없습니다: 서버는 위 버전으로 계속 응답합니다.",
    ),
    "serve.step2": (
        "2. If the error says the stored version is damaged, roll `production` back with "
        "*Roll back…* (the alias and the served model then agree again) and republish the "
        "version from its training run.",
        "2. 저장된 버전이 손상되었다는 오류라면 *롤백…* 으로 `production`을 되돌리고(별칭과 "
        "서비스 중인 모델이 다시 일치합니다) 해당 학습 실행에서 버전을 다시 게시하세요.",
    ),
    "serve.step3": (
        "3. If it is a resource problem (memory, disk for the model cache), fix it and trigger "
        "`freshlm_deploy` to load the version again.",
        "3. 자원 문제(메모리, 모델 캐시 디스크)라면 해결한 뒤 `freshlm_deploy`를 실행해 다시 "
        "불러오세요.",
    ),
    # --- the nightly deadline ---
    "deadline.header": (
        ":alarm_clock: FreshLM night is late: {dag} still {state} at its deadline",
        ":alarm_clock: FreshLM 야간 작업 지연: 마감 시각에 {dag}이(가) 아직 {state} 상태입니다",
    ),
    "deadline.deadline": ("Deadline", "마감"),
    "deadline.started": ("Started", "시작"),
    "deadline.stuck": ("*Stuck on*", "*멈춘 곳*"),
    "deadline.no_tasks": (
        "no task is running or queued (the run waits on the scheduler or a pool)",
        "실행 중이거나 대기 중인 태스크 없음 (스케줄러나 풀을 기다리는 중)",
    ),
    "deadline.step1": (
        "1. Open the run (button below) and the log of the task it is stuck on.",
        "1. 아래 버튼으로 실행을 열고 멈춘 태스크의 로그를 확인하세요.",
    ),
    "deadline.step2": (
        "2. A source or a training step hangs: its `execution_timeout` will fail it and alert; "
        "to move on now, mark it failed in the Airflow UI and *Clear* it after the fix.",
        "2. 소스나 학습 단계가 멈춰 있다면 `execution_timeout`이 곧 실패 처리하고 알림을 "
        "보냅니다. 지금 넘어가려면 Airflow UI에서 실패로 표시하고, 고친 뒤 *Clear* 하세요.",
    ),
    "deadline.step3": (
        "3. Production keeps serving the last promoted model meanwhile; tonight's facts arrive "
        "one night later.",
        "3. 그동안 프로덕션은 마지막으로 승격된 모델로 계속 서비스합니다. 오늘 밤의 새 사실은 "
        "하루 늦게 반영됩니다.",
    ),
    "deadline.text": (
        "FreshLM night is late: {dag} run {run} still {state} at its deadline {deadline}; "
        "stuck on {stuck}.",
        "FreshLM 야간 작업 지연: {dag} 실행 {run}이(가) 마감 {deadline}에 아직 {state} 상태, "
        "멈춘 곳: {stuck}.",
    ),
    "button.open_run": ("Open run", "실행 열기"),
}


def language() -> str:
    """The alert language from the settings (``FRESHLM_ALERT_LANGUAGE``)."""
    from freshlm.settings import get_settings

    return get_settings().alert_language


def t(key: str, lang: str | None = None, **slots: Any) -> str:
    """The phrase ``key`` in ``lang`` (default: :func:`language`) with its slots filled."""
    english, korean = TEXTS[key]
    phrase = korean if (lang or language()) == "ko" else english
    return phrase.format(**slots) if slots else phrase
