"""The iOS app cannot be built here, so its contract with the model and the
golden kit is checked from the Swift sources: the names, sizes, colour space
and labels in ModelContract.swift must match the coremltools spec of a real
converted Core ML variant, project.yml and the README must put the model and
the kit where the code loads them, and every property the Swift decoder reads
must exist in a real golden.json."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

IOS = Path(__file__).resolve().parents[2] / "apps" / "ios"
SWIFT = sorted(p for p in IOS.rglob("*.swift") if ".build" not in p.relative_to(IOS).parts)


def contract() -> dict:
    text = (IOS / "EdgekitDigits" / "ModelContract.swift").read_text()
    out = {}
    for name, value in re.findall(r"^\s*static let (\w+)\s*=\s*(.+?)\s*$", text, re.M):
        out[name] = json.loads(value)  # Swift string/int/bool/array literals here are JSON literals
    return out


def test_contract_file_parses():
    c = contract()
    assert {"modelResource", "inputName", "inputWidth", "inputHeight", "inputColorSpace", "labelOutput",
            "probabilitiesOutput", "classLabels", "goldenFolder", "goldenSchema"} <= set(c)


def test_swift_code_uses_the_contract_not_literals():
    c = contract()
    literals = {c[k] for k in ("inputName", "labelOutput", "probabilitiesOutput", "goldenFolder", "modelResource")}
    for path in SWIFT:
        if path.name == "ModelContract.swift":
            continue
        for lit in re.findall(r'"((?:[^"\\]|\\.)*)"', path.read_text()):
            assert lit not in literals, f"{path.name} hard-codes {lit!r}; use ModelContract"
    src = {p.name: p.read_text() for p in SWIFT}
    assert "ModelContract.inputName" in src["DigitClassifier.swift"]
    assert "ModelContract.probabilitiesOutput" in src["DigitClassifier.swift"]
    assert "VNCoreMLRequest" in src["DigitClassifier.swift"] and "VNClassificationObservation" in src["DigitClassifier.swift"]
    assert "kCVPixelFormatType_OneComponent8" in src["DigitImage.swift"]
    assert "ModelContract.inputWidth" in src["DigitImage.swift"] and "CGColorSpaceCreateDeviceGray" in src["DigitImage.swift"]


def test_project_and_readme_put_model_and_kit_where_the_code_loads_them():
    c = contract()
    yml = (IOS / "project.yml").read_text()
    model_path = f"EdgekitDigits/{c['modelResource']}.mlpackage"
    golden_path = f"EdgekitDigitsTests/{c['goldenFolder']}"
    assert re.search(rf"- path: {re.escape(model_path)}\n\s+type: file\n\s+buildPhase: sources", yml)
    assert re.search(rf"- path: {re.escape(golden_path)}\n\s+type: folder\n\s+buildPhase: resources", yml)
    assert "type: bundle.unit-test" in yml and "- target: EdgekitDigits" in yml
    readme = (IOS / "README.md").read_text()
    assert f"apps/ios/{model_path}" in readme and f"apps/ios/{golden_path}" in readme
    assert "GoldenParityTests" in "".join(p.name for p in SWIFT)
    assert not list(IOS.rglob("*.xcodeproj")), "the project is text-defined (project.yml)"


@pytest.fixture(scope="module")
def coreml_spec(pipeline_run):
    import coremltools as ct

    run_dir, _, _ = pipeline_run
    vj = json.loads((run_dir / "variants" / "coreml-fp32" / "variant.json").read_text())
    return ct.utils.load_spec(str(run_dir / "variants" / "coreml-fp32" / vj["file"]["path"])), run_dir


def test_contract_matches_a_real_converted_core_ml_model(coreml_spec):
    import coremltools as ct

    spec, _ = coreml_spec
    c = contract()
    desc = spec.description
    inputs = {f.name: f for f in desc.input}
    assert list(inputs) == [c["inputName"]]
    img = inputs[c["inputName"]].type.imageType
    assert (img.width, img.height) == (c["inputWidth"], c["inputHeight"])
    color = ct.proto.FeatureTypes_pb2.ImageFeatureType.ColorSpace.Name(img.colorSpace)
    assert color == c["inputColorSpace"]
    assert {f.name for f in desc.output} == {c["labelOutput"], c["probabilitiesOutput"]}
    assert desc.predictedFeatureName == c["labelOutput"]
    assert desc.predictedProbabilitiesName == c["probabilitiesOutput"]
    model_type = spec.WhichOneof("Type")
    labels = getattr(spec, model_type).stringClassLabels.vector if model_type != "mlProgram" else None
    if labels is None:  # an ML Program classifier keeps its labels in the program's classify op
        labels = _program_labels(spec)
    assert list(labels) == c["classLabels"]


def _program_labels(spec):
    for fn in spec.mlProgram.functions.values():
        for block in fn.block_specializations.values():
            for op in block.operations:
                if op.type == "classify":
                    for arg in op.inputs["classes"].arguments:
                        if arg.HasField("value"):  # a list of string scalars (or one string tensor)
                            iv = arg.value.immediateValue
                            if iv.HasField("list"):
                                return [s for v in iv.list.values for s in v.immediateValue.tensor.strings.values]
                            return list(iv.tensor.strings.values)
                        name = arg.name
                        for o2 in block.operations:
                            if o2.type == "const" and o2.outputs[0].name == name:
                                return list(o2.attributes["val"].immediateValue.tensor.strings.values)
    raise AssertionError("no classify op with class labels in the program")


def _swift_structs():
    text = (IOS / "Sources" / "EdgekitKit" / "GoldenKit.swift").read_text()
    structs = {}
    for name, body in re.findall(r"struct (\w+): Decodable \{(.*?)\n\}", text, re.S):
        structs[name] = dict(re.findall(r"^\s*(?:public )?let (\w+): ([\w\[\]:? ]+?)\s*$", body, re.M))
    return structs


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def test_swift_golden_types_read_a_real_kit(pipeline_run):
    run_dir, _, _ = pipeline_run
    kit = json.loads((run_dir / "golden" / "golden.json").read_text())
    structs = _swift_structs()
    assert {"GoldenKit", "GoldenModel", "GoldenInput", "GoldenOutput", "GoldenSample", "GoldenVariant"} <= set(structs)

    def check(struct: str, obj: dict, where: str):
        for prop, typ in structs[struct].items():
            key = _snake(prop)
            optional = typ.endswith("?")
            assert key in obj or optional, f"{where}: golden.json has no {key!r} for {struct}.{prop}"
            if key not in obj or obj[key] is None:
                continue
            inner = typ.rstrip("?").strip()
            if inner in structs:
                check(inner, obj[key], f"{where}.{key}")
            elif inner.startswith("[") and ":" not in inner and inner[1:-1] in structs:
                for i, item in enumerate(obj[key][:3]):
                    check(inner[1:-1], item, f"{where}.{key}[{i}]")
            elif inner.startswith("[String: ") and inner[9:-1] in structs:
                for k2, item in obj[key].items():
                    check(inner[9:-1], item, f"{where}.{key}.{k2}")
            elif inner == "String":
                assert isinstance(obj[key], str), f"{where}.{key}"
            elif inner in ("Int", "Double"):
                assert isinstance(obj[key], (int, float)) and not isinstance(obj[key], bool), f"{where}.{key}"
            elif inner == "[UInt8]":
                assert all(isinstance(v, int) and 0 <= v <= 255 for v in obj[key]), f"{where}.{key}"

    check("GoldenKit", kit, "golden.json")
    c = contract()
    assert kit["schema"] == c["goldenSchema"]
    assert kit["model"]["class_names"] == c["classLabels"]
    assert (kit["model"]["input"]["width"], kit["model"]["input"]["height"]) == (c["inputWidth"], c["inputHeight"])
    assert kit["model"]["input"]["name"] == c["inputName"]
    assert all(len(s["pixels"]) == c["inputWidth"] * c["inputHeight"] for s in kit["samples"])
    assert kit["recommended"]["ios"] in (None, *[v for v in kit["variants"] if v.startswith("coreml")])


def test_shipped_variant_ids_survive_swift_snake_case_decoding():
    """convertFromSnakeCase rewrites dictionary keys with underscores, so a
    variant id like `coreml_pal4` would not be found by the XCTest."""
    recipes = sorted((IOS.parents[1] / "convert" / "recipes").glob("*.json"))
    assert recipes
    for r in recipes:
        vid = json.loads(r.read_text())["id"]
        assert "_" not in vid, f"{r.name}: variant id {vid!r} has an underscore"
