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
   twice. Or the `kubernetes` task group (backend `kubernetes`), stage → run → collect:
   `stage_kubernetes` writes the config and renders what the cluster runs for `nodes` ×
   `gpus_per_node` GPUs; `pod_or_published` skips the run when its model version is already in
   the store; one node is one pod (`train_on_kubernetes`), more nodes an indexed Job
   (`train_job_on_kubernetes`) between `create_rank_service` and `delete_rank_service`, its
   headless Service. Both wait deferred, in the triggerer; a failed or evicted pod (a preempted
   node) is retried `FRESHLM_K8S_TRAIN_RETRIES` times, and the retry resumes from the run's
   last checkpoint. `collect_kubernetes` reads the version the pods published.
3. `announce_candidate` — the new version, with its lineage (datasets, training set, base,
   config, code revision) and training metrics, is announced as `freshlm://models/candidates`,
   which schedules `freshlm_evaluate`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

# The provider's operators that training.k8s_operators builds on, named here so that the DAG
# processor imports them once before it forks each parse ([dag_processor]
# parsing_pre_import_modules looks for `airflow.*` imports in the DAG file itself).
import airflow.providers.cncf.kubernetes.operators.job
import airflow.providers.cncf.kubernetes.operators.pod
import airflow.providers.cncf.kubernetes.operators.resource  # noqa: F401
from airflow.sdk import Param, TaskGroup, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowSkipException

from freshlm.alerts.deadline import nightly_deadline
from freshlm.artifacts import CANDIDATE_MODELS_ASSET, DATASETS_ASSET, dag_defaults
from freshlm.settings import get_settings
from training.config import default_of
from training.k8s_operators import (
    staged_rank_service_operators,
    staged_train_job_operator,
    staged_train_pod_operator,
)

ID_PATTERN = "^[A-Za-z0-9][A-Za-z0-9._-]*$"


def _count(name: str, minimum: int, maximum: int, description: str) -> Param:
    """An integer Param of the training config, its default the config's own."""
    return Param(
        default_of(name), type="integer", minimum=minimum, maximum=maximum,
        description=description,
    )  # fmt: skip


settings = get_settings()


@dag(
    dag_id="freshlm_train",
    schedule=[DATASETS_ASSET],
    start_date=datetime(2026, 11, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["freshlm", "train", "deepspeed"],
    doc_md=__doc__,
    # The pod and Job manifests travel as dicts through XCom into the operators' templates.
    render_template_as_native_obj=True,
    # A fine-tune at scale runs for hours; the limit only catches a run that hangs.
    default_args=dag_defaults(execution_timeout=timedelta(hours=24)),
    deadline=nightly_deadline(),
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
        "train_layers": _count(
            "train_layers", 0, 1000, "Full mode: train only the top N transformer blocks (0: all)."
        ),
        "augment": Param(
            default_of("augment"),
            type="boolean",
            description="Also train on each new document's facts stated in several forms "
            "(questions and answers in the model's chat template among them).",
        ),
        "rehearsal": _count(
            "rehearsal",
            0,
            100000,
            "The root base's own question-answer turns trained each pass beside the night's "
            "(self-synthesized rehearsal), so it keeps what it knew; 0: none.",
        ),
        "context_answers": Param(
            default_of("context_answers"),
            type="boolean",
            description="With augment, also train the answers the model itself gives to the "
            "night's questions with the fact's sentence in its prompt, asked without it, so it "
            "says the new facts in its own words.",
        ),
        "question_variants": _count(
            "question_variants",
            0,
            16,
            "With augment, each of the night's span questions also asked in up to this many "
            "other wordings (an owner's possessive as an of phrase, a figure modifier left "
            "out, the wh-phrase as users also write it); 0: none.",
        ),
        "rivals": _count(
            "rivals",
            0,
            16,
            "With augment, each of the night's span answers ranked above the same question "
            "answered by up to this many other spans of the night (a ranking loss), so the "
            "answer is bound to its question; 0: none.",
        ),
        "appositions": Param(
            default_of("appositions"),
            type="boolean",
            description="With augment, each English fact sentence's appositions also stated and "
            "asked as sentences of their own ('LexiDrift, a benchmark of 14,200 neologisms' "
            "also as 'LexiDrift is a benchmark of 14,200 neologisms.').",
        ),
        "written_questions": Param(
            default_of("written_questions"),
            type="boolean",
            description="With augment, each price, count and date of the night also asked in a "
            "question the model writes itself and answers from its sentence ('How many "
            "neologisms does LexiDrift have?'), answered by the figure. The writing takes about "
            "half a minute a night on two CPU cores and is published once per dataset.",
        ),
        "micro_batch_size": _count(
            "micro_batch_size",
            1,
            4096,
            "Sequences per rank per optimizer step (the global batch is this x ranks). The "
            "default suits CPU ranks; a GPU rank takes several times more in the same time a "
            "step, so a run takes fewer, larger steps.",
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
        "nodes": Param(
            1,
            type="integer",
            minimum=1,
            maximum=64,
            description="Backend kubernetes: nodes (pods) the run spans; more than 1 runs an "
            "indexed Job whose pods find each other through a headless Service.",
        ),
        "gpus_per_node": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            maximum=64,
            description="Backend kubernetes: GPUs of each node (empty: gpus). The run has "
            "nodes x gpus_per_node ranks.",
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
        from training.backends import kubernetes_shape
        from training.plan import TooLittleNewData, plan_training

        ctx = get_current_context()
        events = triggering_extras(ctx, DATASETS_ASSET)
        try:
            planned = plan_training(ctx["params"], events, store=open_store())
        except TooLittleNewData as exc:
            raise AirflowSkipException(str(exc)) from None
        kubernetes_shape(ctx["params"], planned.gpus)  # a bad shape fails here, not in a pod
        return planned.to_dict()

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

        params = get_current_context()["params"]
        return stage_kubernetes_run(
            TrainingPlan.from_dict(plan),
            run_name="freshlm-train",
            nodes=params.get("nodes"),
            gpus_per_node=params.get("gpus_per_node"),
        )

    @task.branch
    def pod_or_published(staged: dict) -> list[str]:
        from freshlm.store import open_store
        from training.backends import training_pod_needed

        if not training_pod_needed(open_store(), staged):
            return ["collect_kubernetes"]  # the version is published: no GPU pod for it
        if staged["nodes"] == 1:
            return ["train_on_kubernetes"]
        return ["create_rank_service"]

    # Runs after the pod or the Job, or without them when pod_or_published skipped them.
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
    # The group keeps its tasks' ids unprefixed: runs, logs and XComs are found by them.
    with TaskGroup("kubernetes", prefix_group_id=False, tooltip="stage → run → collect"):
        staged = stage_kubernetes(planned)
        manifest = "{{ ti.xcom_pull(task_ids='stage_kubernetes')['%s'] }}"
        # Retries (a preempted node) start the same config again: training resumes from the
        # run's last checkpoint.
        retry = {
            "retries": settings.k8s_train_retries,
            "retry_delay": timedelta(seconds=settings.k8s_train_retry_delay_s),
        }
        pod = staged_train_pod_operator(
            task_id="train_on_kubernetes",
            pod_manifest=manifest % "pod",
            namespace=settings.k8s_namespace,
            **retry,
        )
        create_service, delete_service = staged_rank_service_operators(
            create_task_id="create_rank_service",
            delete_task_id="delete_rank_service",
            service_yaml=manifest % "service_yaml",
            namespace=settings.k8s_namespace,
        )
        job = staged_train_job_operator(
            task_id="train_job_on_kubernetes", job_manifest=manifest % "job", **retry
        )
        collected = collect_kubernetes(staged)
        check = pod_or_published(staged)
        check >> [pod, create_service, collected]
        create_service >> job >> delete_service
        [pod, job] >> collected
    choose_backend(planned) >> [local, staged]
    [local, collected] >> announce_candidate(planned)


freshlm_train()
