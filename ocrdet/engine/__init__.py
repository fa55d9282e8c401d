"""The generic training engine: Trainer, TrainModule contract, callbacks, loggers, precision, checkpoint files,
devices and ranks, and CPU kernels for layers Paddle runs slowly (`kernels`: a depthwise conv). It is the bottom
layer: it imports nothing of ocrdet outside `ocrdet.engine` and knows no OCR
(no batch keys, metric names or PaddleOCR file names: tasks and the checkpoint callback's arguments bring those).
The detection layers above import it downward: `data/` (rank sharding from `engine.distributed`, closing loader iterators with `engine.loaders`), `models/`
(reading weight files with `engine.checkpoint_io`), `det/` (the task and PaddleOCR's checkpoint layout), `cli/`."""
