"""The tiny `edgekit run` flags the apps tests share (imported by conftest and tests)."""
PIPELINE_VARIANTS = "tflite-fp32,tflite-int8,coreml-fp32,coreml-pal4"
PIPELINE_ARGS = ["--epochs", "1", "--train-limit", "1500", "--test-limit", "400", "--variants", PIPELINE_VARIANTS,
                 "--calibration-size", "100", "--latency-runs", "3"]
