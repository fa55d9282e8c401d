"""PaddleOCR's PP-OCRv3 detection training guide, walked end to end on tiny synthetic data:
DML teacher -> extract -> CML with that frozen teacher -> extract student -> student finetune ->
CML finetune from the whole checkpoint -> DML finetune from the extracted teacher -> evaluate -> export."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import paddle

from ocrdet.cli.config import compose_config
from ocrdet.cli.eval import run_eval
from ocrdet.det.graph import load_predictor, predict
from ocrdet.models.weights import load_pretrained
from ocrdet.cli.export import run_export
from ocrdet.cli.extract import main as extract
from ocrdet.cli.train import run_train
from tests.integration.conftest import TINY

TEACHER = ["backbone=resnet50_vd", "neck=lk_pan", "head=db_k7"]
# the guide's steps need no validation; each run keeps its latest checkpoint; eager steps (the recipes' weights flow
# is under test here; compiled DML/CML steps have their own equivalence tests, test_compiled_step.py)
QUIET = [*TINY, "logger=none", "trainer.check_val_every_n_epoch=null", "trainer.compile=false"]


def run(tmp_path: Path, name: str, overrides: list[str]) -> Path:
    run_train(compose_config("train", [*QUIET, *overrides], output_dir=tmp_path / name))
    return tmp_path / name / "checkpoints" / "latest.pdparams"


def test_ppocrv3_guide_end_to_end(tmp_path, capsys):
    # 1. DML: two teacher-architecture models trained against each other
    dml = run(tmp_path, "dml", ["distill_mode=dml", *TEACHER])
    dml_state = paddle.load(str(dml))
    assert {k.split(".")[0] for k in dml_state} == {"Student", "Student2"}

    # 2. the DML Student becomes the teacher
    teacher = tmp_path / "teacher.pdparams"
    assert extract([str(dml), "--model", "Student", "-o", str(teacher)]) == 0
    teacher_state = paddle.load(str(teacher))
    assert len(teacher_state) == len([k for k in dml_state if k.startswith("Student.")])

    # 3. CML with the frozen teacher: its weights and BN statistics come out unchanged, bit for bit
    cml = run(tmp_path, "cml", ["distill_mode=cml", f"model.members.teacher.pretrained={teacher}"])
    cml_state = paddle.load(str(cml))
    for key, value in teacher_state.items():
        np.testing.assert_array_equal(cml_state[f"Teacher.{key}"].numpy(), value.numpy(), err_msg=key)

    # 4. extract the CML student for deployment / finetuning
    student = tmp_path / "student.pdparams"
    assert extract([str(cml), "--model", "Student", "-o", str(student)]) == 0
    assert "wrote" in capsys.readouterr().out

    # 5. student finetune from the extracted student
    finetuned = run(tmp_path, "student_ft", ["finetune=student", f"finetune.pretrained={student}"])
    # 6. CML finetune from the whole CML checkpoint (Student, Student2 and Teacher keys all match)
    run(tmp_path, "cml_ft", ["distill_mode=cml", "finetune=cml_checkpoint", f"finetune.pretrained={cml}"])
    # 7. DML finetune with the extracted teacher loaded into both members (the finetune group loads weights only:
    # the teacher architecture is the model config's)
    dml_ft = run(tmp_path, "dml_ft", ["distill_mode=dml", *TEACHER, "finetune=dml_teacher", f"finetune.pretrained={teacher}"])
    assert {k.split(".")[0] for k in paddle.load(str(dml_ft))} == {"Student", "Student2"}

    # 8. evaluate the finetuned student
    eval_cfg = compose_config("eval", [*[o for o in TINY if o.startswith("data.")], f"weights={finetuned}"],
                              output_dir=tmp_path / "eval")
    metrics = run_eval(eval_cfg)
    assert set(metrics) == {"precision", "recall", "hmean"}

    # 9. export the student and check the predictor against the dygraph model
    export_cfg = compose_config("export", [f"weights={finetuned}", f"output_dir={tmp_path / 'export'}"],
                                output_dir=tmp_path / "export_run")
    run_export(export_cfg)
    from hydra.utils import instantiate

    model = instantiate(export_cfg.model)
    load_pretrained(model, str(finetuned))
    model.eval()
    image = np.random.default_rng(0).normal(size=(1, 3, 64, 96)).astype("float32")
    expected = model(paddle.to_tensor(image))["maps"].numpy()
    got = predict(load_predictor(str(tmp_path / "export"), threads=1), image)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_cml_export_writes_each_submodel(tmp_path):
    cml = run(tmp_path, "cml", ["distill_mode=cml"])
    cfg = compose_config("export", ["distill_mode=cml", f"weights={cml}", f"output_dir={tmp_path / 'out'}",
                                    "submodels=[Student]"], output_dir=tmp_path / "export_run")
    written = run_export(cfg)
    assert written and all(Path(p).parent == tmp_path / "out" / "Student" for p in written)


def test_cml_from_released_students_and_a_dml_teacher_logs_every_term(tmp_path):
    from mlflow.tracking import MlflowClient

    from tests.conftest import shared_path

    released = shared_path("weights", "ch_PP-OCRv3_det_student.pdparams")
    dml = run(tmp_path, "dml", ["distill_mode=dml", *TEACHER])
    teacher = tmp_path / "teacher.pdparams"
    assert extract([str(dml), "--model", "Student", "-o", str(teacher)]) == 0
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    cfg = compose_config(
        "train",
        [*TINY, f"logger.mlflow.tracking_uri={uri}", "logger.mlflow.experiment_name=cml", "distill_mode=cml",
         f"model.members.student.pretrained={released}", f"model.members.student2.pretrained={released}",
         f"model.members.teacher.pretrained={teacher}"],
        output_dir=tmp_path / "cml",
    )
    run_train(cfg)
    client = MlflowClient(uri)
    (record,) = client.search_runs([client.get_experiment_by_name("cml").experiment_id])
    terms = {"loss", "dila_db", "dml", "db", "dila_db_Student_Teacher", "dila_db_Student2_Teacher",
             "dml_Student_Student2", "db_Student", "db_Student2"}
    terms |= {f"db_{m}_loss_{t}_maps" for m in ("Student", "Student2") for t in ("shrink", "threshold", "binary")}
    assert {f"train/{t}" for t in terms} | {"train/lr", "val/hmean"} <= set(record.data.metrics)
    assert record.data.params["model.members.student.pretrained"] == str(released)
