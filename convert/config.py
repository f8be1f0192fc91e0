"""The conversion stage's config: which run, which variants, how to calibrate.

``ConvertConfig`` is frozen and validated once at construction: the run
directory, the variant ids (``("all",)`` or ids of recipe files; an unknown
id or a recipe that does not validate is a ConfigError), the number of
training images for calibration, ``overwrite``, an optional recipe folder
(instead of the shipped ``edgekit/convert/recipes``), an optional cap on
fine-tuning images (overrides the recipes' ``train_limit``; for quick runs and
tests, recorded in variant.json) and ``calibration_seed``, the seed of the
calibration and fine-tuning samples.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from edgekit import artifacts, stage
from edgekit.convert import recipe as recipes
from edgekit.errors import ConfigError
from edgekit.rundir import RunDir

ALL = "all"
DEFAULT_CALIBRATION_SIZE = 500
MAX_CALIBRATION_SIZE = 100_000


@dataclass(frozen=True)
class ConvertConfig:
    run_dir: Path
    variants: tuple[str, ...] = (ALL,)
    calibration_size: int = DEFAULT_CALIBRATION_SIZE
    overwrite: bool = False
    recipe_dir: Path | None = None
    finetune_limit: int | None = None
    calibration_seed: int = 0
    jobs: int = stage.DEFAULT_JOBS   # 2: fine-tunes in a second process beside the other conversions

    def __post_init__(self):
        object.__setattr__(self, "run_dir", Path(self.run_dir))
        if self.recipe_dir is not None:
            object.__setattr__(self, "recipe_dir", Path(self.recipe_dir))
        variants = (self.variants,) if isinstance(self.variants, str) else tuple(self.variants)
        object.__setattr__(self, "variants", variants)
        if not variants:
            raise ConfigError("--variants", "name at least one variant id, or 'all'")
        if len(set(variants)) != len(variants):
            raise ConfigError("--variants", "a variant id is listed twice")
        if ALL in variants and len(variants) > 1:
            raise ConfigError("--variants", "'all' cannot be combined with variant ids")
        for name, value, lo, hi in (("--calibration-size", self.calibration_size, 1, MAX_CALIBRATION_SIZE),
                                    ("--finetune-limit", self.finetune_limit, 1, 10**9),
                                    ("--calibration-seed", self.calibration_seed, 0, 2**32 - 1)):
            if value is None and name == "--finetune-limit":
                continue
            if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
                raise ConfigError(name, f"should be an integer in [{lo}, {hi}], got {value!r}")
        stage.check_jobs(self.jobs)
        self.recipes()  # unknown ids and invalid recipe files fail here, before any work

    def variant_ids(self) -> list[str]:
        """The ids to convert, in recipe-file order (all of them for 'all')."""
        if self.variants == (ALL,):
            return recipes.known_ids(self.recipe_dir)
        return list(self.variants)

    def recipes(self) -> list[recipes.Recipe]:
        return [recipes.load(i, self.recipe_dir) for i in self.variant_ids()]

    def content_inputs(self) -> dict:
        """What the recipe files say, by id (sha256 of their canonical JSON): ``edgekit
        run`` records it with the flags, so an edited recipe file reruns convert
        even though no flag changed."""
        return {"recipes": {r.id: artifacts.sha256_bytes(json.dumps(r.data, sort_keys=True).encode())
                            for r in self.recipes()}}

    @property
    def variants_dir(self) -> Path:
        return RunDir(self.run_dir).variants_dir
