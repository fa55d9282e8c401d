"""Post-processing search on hand-made probability maps: it finds the setting the case was built for, every setting
scores as DBPostProcess + DetMetric would, and a saved result is applied to later commands on that run."""
from __future__ import annotations

import numpy as np
import pytest
from omegaconf import OmegaConf

from ocrdet.metrics.det_metric import DetMetric
from ocrdet.postprocess.db_postprocess import DBPostProcess
from ocrdet.postprocess.search import (
    CachedImage,
    PostprocessGrid,
    apply_saved_postprocess,
    best,
    run_dir_of,
    save_best,
    saved_postprocess,
    search,
)

H, W = 100, 200


def _rect(x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float32)


def _word_case() -> CachedImage:
    """Two 60 x 20 words side by side whose shrunk cores (0.9) are joined by a faint bridge (0.35), and a non-text
    blob of 0.55. Built so that only thresh 0.4 (splits the bridge, 0.3 merges the words into one line box),
    box_thresh 0.6 (drops the blob, 0.5 keeps it) and unclip_ratio 1.5 (0.3 leaves boxes too small for IoU 0.5)
    find both words and nothing else."""
    prob = np.zeros((1, 1, H, W), dtype=np.float32)
    prob[0, 0, 26:35, 26:75] = 0.9  # word A's core: GT x 20..80, y 20..40, shrunk by 6 px
    prob[0, 0, 26:35, 96:145] = 0.9  # word B's core: GT x 90..150
    prob[0, 0, 26:35, 75:96] = 0.35  # the bridge between them
    prob[0, 0, 70:81, 20:61] = 0.55  # not text
    gts = [_rect(20, 20, 80, 40), _rect(90, 20, 150, 40)]
    return CachedImage(prob, np.array([H, W, 1.0, 1.0]), gts, np.array([False, False]))


GRID = PostprocessGrid(
    thresh=[0.3, 0.4], box_thresh=[0.5, 0.6], unclip_ratio=[0.3, 1.5], use_dilation=[False], score_mode=["fast"]
)
BASE = DBPostProcess(max_candidates=1000, box_type="quad")


def test_search_finds_the_setting_the_case_was_built_for():
    printed = []
    results = search([_word_case()], BASE, GRID, DetMetric(), on_result=lambda r: printed.append(r.line()))
    assert len(results) == 8 and len(printed) == 8
    # [gt_care, det_care, matched] per setting, in grid order (thresh, box_thresh, unclip_ratio)
    assert {tuple(r.setting[k] for k in ("thresh", "box_thresh", "unclip_ratio")): r.counts.tolist() for r in results} == {
        (0.3, 0.5, 0.3): [2, 2, 0],  # one line box + the blob
        (0.3, 0.5, 1.5): [2, 2, 0],
        (0.3, 0.6, 0.3): [2, 1, 0],  # the line box alone
        (0.3, 0.6, 1.5): [2, 1, 0],
        (0.4, 0.5, 0.3): [2, 3, 0],  # two words, boxes too small, + the blob
        (0.4, 0.5, 1.5): [2, 3, 2],
        (0.4, 0.6, 0.3): [2, 2, 0],
        (0.4, 0.6, 1.5): [2, 2, 2],
    }
    chosen = best(results)
    assert chosen.setting == {
        "thresh": 0.4, "box_thresh": 0.6, "unclip_ratio": 1.5, "use_dilation": False, "score_mode": "fast"
    }
    assert chosen.line() == (
        "thresh=0.4 box_thresh=0.6 unclip_ratio=1.5 use_dilation=False score_mode=fast "
        "precision=1.000000 recall=1.000000 hmean=1.000000"
    )
    assert printed[-1] == chosen.line()


def test_every_setting_scores_as_the_post_process_and_metric_would():
    images = [_word_case(), _word_case()]
    images[1].gt_ignore = np.array([True, False])  # a don't-care word changes the counts of the second image
    for result in search(images, BASE, GRID, DetMetric()):
        postprocess = DBPostProcess(max_candidates=1000, box_type="quad", **result.setting)
        metric = DetMetric()
        for image in images:
            boxes = postprocess(image.prob_map, image.shape[None])[0]["points"]
            metric.update([boxes], [image.gt_polys], [image.gt_ignore])
        assert result.counts.tolist() == metric.state().tolist()
        assert result.metrics == metric.compute()


def test_ties_go_to_the_first_setting_in_grid_order():
    grid = PostprocessGrid(thresh=[0.4], box_thresh=[0.6, 0.7], unclip_ratio=[1.5], use_dilation=[False, True],
                           score_mode=["fast", "slow"])
    results = search([_word_case()], BASE, grid, DetMetric())
    assert [r.metrics["hmean"] for r in results] == [1.0] * 8
    assert best(results).setting["box_thresh"] == 0.6 and best(results).setting["use_dilation"] is False


def test_an_empty_grid_axis_is_refused():
    with pytest.raises(ValueError, match=r"no values for \['score_mode'\]"):
        PostprocessGrid(thresh=[0.3], box_thresh=[0.6], unclip_ratio=[1.5], use_dilation=[False], score_mode=[])


def _run_dir(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "best_accuracy.pdparams").write_bytes(b"")
    return run


def test_the_best_setting_is_saved_beside_the_run_and_applied_to_its_commands(tmp_path):
    run = _run_dir(tmp_path)
    results = search([_word_case()], BASE, GRID, DetMetric())
    saved = save_best(run, results, "1 hand-made image")
    assert saved == run / "search" / "best_postprocess.yaml"
    assert dict(OmegaConf.load(saved)) == best(results).setting
    csv_lines = (run / "search" / "results.csv").read_text(encoding="utf-8").splitlines()
    assert csv_lines[0] == "thresh,box_thresh,unclip_ratio,use_dilation,score_mode,gt_care,det_care,matched,precision,recall,hmean"
    assert csv_lines[-1] == "0.4,0.6,1.5,False,fast,2,2,2,1.000000,1.000000,1.000000" and len(csv_lines) == 9
    # the run is found from the run dir, a checkpoint prefix or its file; a bare weights file has none
    for weights in (run, run / "checkpoints" / "best_accuracy", run / "checkpoints" / "best_accuracy.pdparams"):
        assert run_dir_of(weights) == run and saved_postprocess(weights) == saved
    (tmp_path / "released.pdparams").write_bytes(b"")
    assert run_dir_of(tmp_path / "released.pdparams") is None

    def cfg():
        return OmegaConf.create({"weights": str(run), "postprocess": {
            "thresh": 0.3, "box_thresh": 0.6, "unclip_ratio": 1.5, "use_dilation": False, "score_mode": "fast",
            "max_candidates": 1000,
        }})

    applied = cfg()
    assert apply_saved_postprocess(applied, ["weights=x"]) == saved
    assert applied.postprocess.thresh == 0.4 and applied.postprocess.max_candidates == 1000
    overridden = cfg()  # a key given on the command line wins
    apply_saved_postprocess(overridden, ["postprocess.thresh=0.3"])
    assert overridden.postprocess.thresh == 0.3 and overridden.postprocess.unclip_ratio == 1.5
