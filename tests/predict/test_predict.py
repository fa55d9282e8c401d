"""ocrdet-predict: predict_det's post-filter on hand-made boxes, input listing, and a run on two synthetic images
with a random student, as a dygraph checkpoint and as an exported inference model (same results file)."""
from __future__ import annotations

import json
import re

import cv2
import numpy as np
import paddle
import pytest
from hydra.utils import instantiate

from ocrdet.cli.config import compose_config
from ocrdet.data.synthetic import render_text_image
from ocrdet.cli.predict import filter_boxes, list_images, order_points_clockwise, run_predict
from ocrdet.det.visualize import PRED_COLOR

pytestmark = pytest.mark.filterwarnings("ignore")


def test_points_are_ordered_clockwise_from_top_left():
    box = np.array([[50, 40], [10, 40], [10, 10], [50, 10]])  # BR, BL, TL, TR
    np.testing.assert_array_equal(order_points_clockwise(box), [[10, 10], [50, 10], [50, 40], [10, 40]])
    tilted = np.array([[12, 30], [2, 10], [40, 0], [50, 20]])
    np.testing.assert_array_equal(order_points_clockwise(tilted), [[2, 10], [40, 0], [50, 20], [12, 30]])


def test_filter_clips_to_the_image_and_drops_boxes_with_a_side_of_3_px_or_less():
    boxes = [
        np.array([[-5, -5], [30, -5], [30, 30], [-5, 30]]),  # clipped to the 25 x 20 image
        np.array([[0, 0], [3, 0], [3, 10], [0, 10]]),  # top side 3 px: dropped
        np.array([[0, 0], [4, 0], [4, 10], [0, 10]]),  # 4 x 10: kept
        np.array([[0.5, 0], [4.4, 0], [4.4, 9], [0.5, 9]]),  # truncated to x 0..4: int(4.0) = 4 > 3, kept
        np.array([[1.5, 0], [4.4, 0], [4.4, 9], [1.5, 9]]),  # truncated to x 1..4: 3 px, dropped
        np.array([[5, 5], [12, 5], [12, 8], [5, 8]]),  # left side 3 px: dropped
    ]
    kept = filter_boxes(boxes, height=20, width=25)
    assert [b.tolist() for b in kept] == [
        [[0, 0], [24, 0], [24, 19], [0, 19]],
        [[0, 0], [4, 0], [4, 10], [0, 10]],
        [[0, 0], [4, 0], [4, 9], [0, 9]],
    ]
    assert all(b.dtype == np.int32 for b in kept)


def test_list_images_takes_a_file_a_folder_or_a_glob(tmp_path):
    for name in ("b.png", "a.jpg", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.JPG").write_bytes(b"x")
    assert [p.name for p in list_images(tmp_path)] == ["a.jpg", "b.png"]
    assert [p.name for p in list_images(f"{tmp_path}/**/*.*")] == ["a.jpg", "b.png", "c.JPG"]
    assert [p.name for p in list_images(tmp_path / "b.png")] == ["b.png"]
    with pytest.raises(FileNotFoundError, match="no images"):
        list_images(tmp_path / "*.gif")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Two synthetic images (64 x 64 and 64 x 96) and a random-init student saved as a .pdparams."""
    root = tmp_path_factory.mktemp("predict")
    images = root / "images"
    images.mkdir()
    first = render_text_image(np.random.default_rng(0), 64).image
    second = np.concatenate([first, render_text_image(np.random.default_rng(1), 64).image[:, :32]], axis=1)
    cv2.imwrite(str(images / "a.png"), first)
    cv2.imwrite(str(images / "b.jpg"), second)
    paddle.seed(0)
    model = instantiate(compose_config("predict", ["weights=x", "input=x"]).model)
    paddle.save(model.state_dict(), str(root / "student.pdparams"))
    return root, model


# thresh 0 makes the whole map one text region: one box that the post-processing expands past the image and the
# post-filter clips back to the image's corners, whatever the random weights predict.
WHOLE_IMAGE = ["postprocess.thresh=0.0", "postprocess.box_thresh=0.0"]
EXPECTED = {
    "a.png": [{"points": [[0, 0], [63, 0], [63, 63], [0, 63]]}],
    "b.jpg": [{"points": [[0, 0], [95, 0], [95, 63], [0, 63]]}],
}


def predict(root, weights, out: str, extra=()) -> str:
    cfg = compose_config(
        "predict", [f"weights={weights}", f"input={root / 'images'}", f"output={root / out}", *WHOLE_IMAGE, *extra]
    )
    return run_predict(cfg).read_text(encoding="utf-8")


def test_predict_writes_paddleocr_results_and_pngs(inputs):
    root, _ = inputs
    text = predict(root, root / "student.pdparams", "dygraph")
    lines = text.split("\n")
    assert lines[-1] == "" and len(lines) == 3
    for line in lines[:2]:
        assert re.fullmatch(r"[ab]\.(png|jpg)\t\[.*\]", line)
        name, payload = line.split("\t")
        assert json.loads(payload) == EXPECTED[name]
    assert lines[0] == 'a.png\t[{"points": [[0, 0], [63, 0], [63, 63], [0, 63]]}]'
    # drawn images keep the input's name and format (PaddleOCR's det_res_<image name>): b.jpg stays a JPEG
    assert sorted(p.name for p in (root / "dygraph").glob("det_res_*")) == ["det_res_a.png", "det_res_b.jpg"]
    assert (root / "dygraph" / "det_res_b.jpg").read_bytes()[:3] == b"\xff\xd8\xff"
    png = cv2.imread(str(root / "dygraph" / "det_res_a.png"))
    assert png.shape == (64, 64, 3)
    assert (png[0] == PRED_COLOR).all(axis=1).all()  # the box outline along the top edge, lossless
    jpeg = cv2.imread(str(root / "dygraph" / "det_res_b.jpg")).astype(int)
    assert jpeg.shape == (64, 96, 3)
    # JPEG is lossy: the red outline along the top edge comes back red on average, not exactly (0, 0, 255)
    blue, green, red = jpeg[0].mean(axis=0)
    assert red > 200 and blue < 80 and green < 80


def test_inference_model_gives_the_same_results(inputs):
    from ocrdet.det.graph import export_inference

    root, model = inputs
    export_inference(model, str(root / "export" / "inference"))
    dygraph = predict(root, root / "student.pdparams", "again", ["draw=false"])
    exported = predict(root, root / "export", "exported", ["draw=false"])
    assert exported == dygraph
    assert not list((root / "exported").glob("det_res_*"))


def test_results_file_reads_back_as_a_label_file(inputs):
    """det_results.txt is a PaddleOCR det label file without transcriptions: read back, it gives the same images and
    polygons (so it can serve as pseudo-labels: data=paddleocr_label)."""
    from ocrdet.data.labels import read_paddleocr_label_file

    root, _ = inputs
    predict(root, root / "student.pdparams", "roundtrip", ["draw=false"])
    lines = read_paddleocr_label_file(root / "roundtrip" / "det_results.txt")
    assert [line.image_paths for line in lines] == [["a.png"], ["b.jpg"]]
    for line in lines:
        expected = [region["points"] for region in EXPECTED[line.image_paths[0]]]
        assert line.annotation.polys.tolist() == expected
        assert line.annotation.texts == [""] and not line.annotation.ignore_tags.any()


def test_a_saved_search_result_is_applied_by_ocrdet_predict(inputs, tmp_path):
    """`ocrdet-eval search=true` leaves `<run>/search/best_postprocess.yaml`; ocrdet-predict on that run uses it
    (here thresh 0 / box_thresh 0: the whole-image boxes), and a key on the command line still wins."""
    import shutil
    import subprocess
    import sys

    root, _ = inputs
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    shutil.copy(root / "student.pdparams", run / "checkpoints" / "best_accuracy.pdparams")
    (run / "search").mkdir()
    (run / "search" / "best_postprocess.yaml").write_text(
        "thresh: 0.0\nbox_thresh: 0.0\nunclip_ratio: 1.5\nuse_dilation: false\nscore_mode: fast\n", encoding="utf-8"
    )

    def cli(out: str, *extra: str) -> tuple[dict, str]:
        command = [sys.executable, "-m", "ocrdet.cli.predict", f"weights={run}", f"input={root / 'images'}",
                   f"output={tmp_path / out}", "draw=false", f"hydra.run.dir={tmp_path / out}", *extra]
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        lines = (tmp_path / out / "det_results.txt").read_text(encoding="utf-8").splitlines()
        return {line.split("\t")[0]: json.loads(line.split("\t")[1]) for line in lines}, done.stdout + done.stderr

    results, log = cli("saved")
    assert results == EXPECTED
    assert f"post-processing from {run / 'search' / 'best_postprocess.yaml'}: thresh=0.0, box_thresh=0.0" in log
    results, _ = cli("overridden", "postprocess.thresh=1.0")  # nothing exceeds 1.0: no boxes
    assert results == {"a.png": [], "b.jpg": []}
