"""
### FreshLM fine-tune

Stage 4 of the loop: a **published dataset** in, a **candidate model version** out. Runs when
`freshlm_curate` announces `freshlm://datasets`, or by hand with Params.

1. `plan` — resolves the datasets (the triggering event's, or the Param's), the base version
   (default: what `production` points at now, which is also the baseline the evaluation compares
   with), and the training config; every Param is checked before anything starts. A
   scheduled run whose new data is below `FRESHLM_TRAIN_MIN_NEW_TOKENS` is skipped here (the
   task log says how small it was), and its datasets are trained with the next scheduled run's.
2. `train_local` (backend `local`) — the DeepSpeed launcher with `gpus` ranks on this worker
   (CPU ranks over gloo where there is no GPU), ZeRO-2 by default. Progress (step, loss,
   tokens/s, ETA) streams into the task log; a failing rank's own error fails the task. A
   rerun resumes from the last checkpoint in the store, and a finished run is never published
   twice. Or `stage_kubernetes` → `train_on_kubernetes` → `collect_kubernetes` (backend
   `kubernetes`): one pod with `gpus` GPUs running the same entrypoint; `pod_or_published`
   skips the pod when the run's model version is already in the store.
3. `announce_candidate` — the new version, with its lineage (datasets, training set, base,
   config, code revision) and training metrics, is announced as `freshlm://models/candidates`,
   which schedules `freshlm_evaluate`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.sdk import Param, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowSkipException

from freshlm.artifacts import CANDIDATE_MODELS_ASSET, DATASETS_ASSET, dag_defaults
from freshlm.settings import get_settings
from training.config import default_of

ID_PATTERN = "^[A-Za-z0-9][A-Za-z0-9._-]*$"

settings = get_settings()


@dag(
    dag_id="freshlm_train",
    schedule=[DATASETS_ASSET],
    start_date=datetime(2026, 11, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["freshlm", "train", "deepspeed"],
    doc_md=__doc__,
    # The pod manifest travels as a dict through XCom into pod_template_dict.
    render_template_as_native_obj=True,
    # A fine-tune at scale runs for hours; the limit only catches a run that hangs.
    default_args=dag_defaults(execution_timeout=timedelta(hours=24)),
    params={
        "datasets": Param(
            [],
            type="array",
            items={"type": "string", "pattern": ID_PATTERN, "maxLength": 128},
            description="Published dataset ids to train on; empty: the triggering dataset "
            "(or, by hand, the newest).",
        ),
        "base_version": Param(
            "production",
            type="string",
            pattern=ID_PATTERN,
            maxLength=128,
            description="Model to start from: an alias (production, previous) or a version id.",
        ),
        "mode": Param(
            default_of("mode"), enum=["full", "lora"], description="Full fine-tune or LoRA."
        ),
        "epochs": Param(default_of("epochs"), type="number", exclusiveMinimum=0, maximum=100),
        "learning_rate": Param(
            default_of("learning_rate"), type="number", exclusiveMinimum=0, maximum=1
        ),
        "replay_ratio": Param(
            default_of("replay_ratio"),
            type="number",
            minimum=0,
            exclusiveMaximum=1,
            description="Share of training tokens replayed from earlier datasets.",
        ),
        "train_layers": Param(
            default_of("train_layers"),
            type="integer",
            minimum=0,
            maximum=1000,
            description="Full mode: train only the top N transformer blocks (0: all).",
        ),
        "augment": Param(
            default_of("augment"),
            type="boolean",
            description="Also train on each new document's facts stated in several forms "
            "(questions and answers in the model's chat template among them).",
        ),
        "max_steps": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            description="Stop after this many optimizer steps (overrides epochs).",
        ),
        "backend": Param(settings.train_backend, enum=["local", "kubernetes"]),
        "gpus": Param(
            settings.train_gpus,
            type="integer",
            minimum=1,
            maximum=64,
            description="GPUs (local backend on a CPU-only worker: CPU ranks).",
        ),
        "ds_config": Param(
            default_of("ds_config"), enum=["zero2", "zero3"], description="DeepSpeed config."
        ),
    },
)
def freshlm_train():
    @task(retries=0, inlets=[DATASETS_ASSET])
    def plan() -> dict:
        from freshlm.store import open_store
        from freshlm.triggering_events import triggering_extras
        from training.plan import TooLittleNewData, plan_training

        ctx = get_current_context()
        events = triggering_extras(ctx, DATASETS_ASSET)
        try:
            return plan_training(ctx["params"], events, store=open_store()).to_dict()
        except TooLittleNewData as exc:
            raise AirflowSkipException(str(exc)) from None

    @task.branch
    def choose_backend(plan: dict) -> str:
        return "train_local" if plan["backend"] == "local" else "stage_kubernetes"

    @task
    def train_local(plan: dict) -> dict:
        from training.backends import train_locally
        from training.plan import TrainingPlan

        return train_locally(TrainingPlan.from_dict(plan))

    @task
    def stage_kubernetes(plan: dict) -> dict:
        from training.backends import stage_kubernetes_run
        from training.plan import TrainingPlan

        return stage_kubernetes_run(TrainingPlan.from_dict(plan), run_name="freshlm-train")

    @task.branch
    def pod_or_published(staged: dict) -> list[str]:
        from freshlm.store import open_store
        from training.backends import training_pod_needed

        if training_pod_needed(open_store(), staged):
            return ["train_on_kubernetes", "collect_kubernetes"]
        return ["collect_kubernetes"]  # the version is published: no GPU pod for it

    train_on_kubernetes = KubernetesPodOperator(
        task_id="train_on_kubernetes",
        name="freshlm-train",
        namespace=settings.k8s_namespace,
        # The whole pod (GPUs, /dev/shm, Secret-backed store credentials, the command) is built
        # by training.k8s_specs at run time, with this run's GPU count.
        pod_template_dict="{{ ti.xcom_pull(task_ids='stage_kubernetes')['pod'] }}",
        startup_timeout_seconds=1800,
        get_logs=True,
        on_finish_action="delete_succeeded_pod",
        retries=0,
    )

    # Runs after the pod, or without it when pod_or_published skipped it.
    @task(trigger_rule="none_failed_min_one_success")
    def collect_kubernetes(staged: dict) -> dict:
        from freshlm.store import open_store
        from training.backends import kubernetes_result

        return kubernetes_result(open_store(), staged)

    @task(outlets=[CANDIDATE_MODELS_ASSET], trigger_rule="none_failed_min_one_success")
    def announce_candidate(plan: dict) -> dict:
        from training.backends import candidate_event
        from training.plan import TrainingPlan

        ctx = get_current_context()
        ti = ctx["ti"]
        summary = ti.xcom_pull(task_ids="train_local") or ti.xcom_pull(
            task_ids="collect_kubernetes"
        )
        event = candidate_event(TrainingPlan.from_dict(plan), summary)
        ctx["outlet_events"][CANDIDATE_MODELS_ASSET].extra = event
        return event

    planned = plan()
    local = train_local(planned)
    staged = stage_kubernetes(planned)
    collected = collect_kubernetes(staged)
    choose_backend(planned) >> [local, staged]
    pod_check = pod_or_published(staged)
    pod_check >> train_on_kubernetes >> collected
    pod_check >> collected
    [local, collected] >> announce_candidate(planned)


freshlm_train()
