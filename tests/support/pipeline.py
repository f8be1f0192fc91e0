"""The tiny `edgekit run` the apps tests share: 1,500 MNIST training images,
one epoch, 400 test images, four variants that cover every backend and kind."""
PIPELINE_VARIANTS = "tflite-fp32,tflite-int8,coreml-fp32,coreml-pal4"
PIPELINE_ARGS = ["--epochs", "1", "--train-limit", "1500", "--test-limit", "400", "--variants", PIPELINE_VARIANTS,
                 "--calibration-size", "100", "--latency-runs", "3"]
