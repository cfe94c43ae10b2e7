"""Writing models: everything that makes or changes a bundle, apart from the runtime
:mod:`ekspresi.infer` that only reads and runs them (the base install, without torch).

    onnx.py       a trained PyTorch model -> its ONNX graph and bundle (``ekspresi train``)
    package.py    a run or bundle -> a shippable bundle with its evidence (``ekspresi export``)
    int8.py       static int8 quantisation of a graph, and its inverse (``export --int8``)
    ensemble.py   several bundles (and flip TTA) averaged in one graph (``ekspresi ensemble``)

Nothing is imported here: each module brings its own heavy dependencies (torch, onnx).
"""
