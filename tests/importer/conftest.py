"""Fixtures of the import tests: a generated colour photo folder and three
user-trained colour classifiers (Keras 3 ``.keras``, tf_keras SavedModel,
tf_keras ``.h5``), built once per session (support.colour), and each
imported once into its own run directory."""
from __future__ import annotations

import pytest

from support import colour


@pytest.fixture(scope="session")
def photos(tmp_path_factory):
    return colour.make_colour_folder(tmp_path_factory.mktemp("photos") / "photos")


@pytest.fixture(scope="session")
def user_models(tmp_path_factory, photos):
    """{format: path} of the three trained source models."""
    d = tmp_path_factory.mktemp("user models")
    return {"keras3": colour.keras3_model(d / "flowers.keras", photos),
            "saved_model": colour.saved_model(d / "exported", photos),
            "h5": colour.h5_model(d / "net.h5", photos)}


# how each model wants its pixels: the flags a user passes (support.colour documents each)
IMPORT_FLAGS = {
    "keras3": [],                                              # Rescaling inside: default 0,255
    "saved_model": ["--input-range=-1,1"],
    "h5": ["--color", "bgr", "--mean", ",".join(map(str, colour.MEAN[::-1])),
           "--std", ",".join(map(str, colour.STD[::-1]))],      # in the model's (B, G, R) order
}


@pytest.fixture(scope="session")
def imported(tmp_path_factory, user_models, photos):
    """{format: run dir} with model/ imported through the CLI."""
    from edgekit.apps.cli import main

    runs = {}
    for fmt, path in user_models.items():
        run = tmp_path_factory.mktemp(f"import-{fmt}") / "run"
        argv = ["import", "--model", str(path), "--dataset", "folder", "--data-dir", str(photos),
                "--run", str(run), *IMPORT_FLAGS[fmt]]
        assert main(argv) == 0, argv
        runs[fmt] = run
    return runs
