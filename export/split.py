"""Cut an OpenVINO model into consecutive pieces and stitch them back into one model.

NNCF's statistics passes compile the whole model they are given in f32: for the full-size SDXL
UNet that alone is more than 24 GB. Given one piece at a time, each pass compiles and holds only
that piece. A piece is an ov.Model of the original's operations (and their weights) between two
cuts; every tensor it reads from earlier pieces becomes a Parameter named `split.cut.<producer
friendly name>:<port>`, and every tensor later pieces (or the original outputs) read from it
becomes a Result of the same name. The UNet's skip connections cross cuts, so a cut can carry
several tensors. Stitching reconnects each such Parameter's consumers to the earlier piece's
tensor. Written by hand: neither OpenVINO nor NNCF offers model partitioning."""

from collections import defaultdict
from pathlib import Path

import numpy as np
import openvino as ov
import openvino.opset13 as opset

CUT_PREFIX = "split.cut."
# Where to cut, within this fraction of a piece's share of the weights around the even split:
# the place there that leaves the fewest tensors crossing the cut (a block boundary, not the
# middle of an attention layer).
CUT_WINDOW = 0.2


def _name(node) -> str:
    return node.get_friendly_name()


def cut_key(output) -> str:
    """The name a tensor crossing a cut goes by in both pieces."""
    return f"{CUT_PREFIX}{_name(output.get_node())}:{output.get_index()}"


def plan(model: ov.Model, pieces: int) -> dict[str, int]:
    """The piece (0..pieces-1) of each computing operation, by friendly name: consecutive in
    topological order, with about the same weight bytes each. Constants (and constant-only
    subgraphs, such as FP16 weights and their Convert) belong to no piece: each piece keeps
    those its operations read, so weights never cross a cut."""
    ordered = model.get_ordered_ops()
    names = [_name(op) for op in ordered]
    if len(set(names)) != len(names):
        raise ValueError("Cannot split a model whose operations' friendly names repeat")
    weights: dict[str, int] = {}  # constant subgraph node -> bytes of the Constants under it
    for op in ordered:
        sources = [_name(i.get_source_output().get_node()) for i in op.inputs()]
        if op.get_type_name() == "Constant":
            weights[_name(op)] = op.get_byte_size()
        elif sources and op.get_type_name() != "Parameter" and all(s in weights for s in sources):
            weights[_name(op)] = sum(weights[s] for s in sources)
    compute = [op for op in ordered if _name(op) not in weights
               and op.get_type_name() not in ("Parameter", "Result")]
    cost = [sum(weights.get(_name(i.get_source_output().get_node()), 0) for i in op.inputs())
            for op in compute]
    cuts = _cuts(compute, cost, pieces)
    return {_name(op): sum(position >= cut for cut in cuts) for position, op in enumerate(compute)}


def _cuts(compute: list, cost: list[int], pieces: int) -> list[int]:
    """Positions (in `compute`) where pieces 1.. start: near an even split of the weights, where
    the fewest tensors are live."""
    position = {_name(op): p for p, op in enumerate(compute)}
    live = np.zeros(len(compute) + 1, dtype=np.int64)  # live[c]: tensors crossing a cut before c
    for p, op in enumerate(compute):
        for output in op.outputs():
            last = max((position.get(_name(t.get_node()), len(compute))
                        for t in output.get_target_inputs()), default=p)
            live[p + 1:last + 1] += 1
    before = np.concatenate([[0], np.cumsum(cost)])  # weight bytes before each position
    total, cuts = before[-1], []
    for k in range(1, pieces):
        target, window = total * k / pieces, CUT_WINDOW * total / pieces
        start = max(cuts[-1] + 1 if cuts else 1, 1)
        candidates = [c for c in range(start, len(compute))
                      if abs(before[c] - target) <= window] or [
                          min(range(start, len(compute)), key=lambda c: abs(before[c] - target))]
        cuts.append(min(candidates, key=lambda c: (live[c], abs(before[c] - target))))
    return cuts


def piece(model: ov.Model, assignment: dict[str, int], index: int) -> ov.Model:
    """Piece `index` of `model`, which this changes: read a fresh copy of the model for each
    piece (reading IR maps the weights, so copies are cheap). The last piece also ends in the
    model's own Results."""
    last = max(assignment.values())
    members = [op for op in model.get_ordered_ops() if assignment.get(_name(op)) == index]
    if index == last:
        members += list(model.get_results())
    parameters: dict[str, object] = {}  # input name -> Parameter, in order of first use
    for op in members:
        for target in op.inputs():
            source = target.get_source_output()
            node = source.get_node()
            if node.get_type_name() == "Parameter":
                parameters.setdefault(_input_name(node), node)
            elif assignment.get(_name(node), index) < index:  # computed by an earlier piece
                key = cut_key(source)
                if key not in parameters:
                    parameters[key] = opset.parameter(source.get_partial_shape(),
                                                      source.get_element_type(), name=key)
                    parameters[key].output(0).get_tensor().set_names({key})
                target.replace_source_output(parameters[key].output(0))
    results = list(model.get_results()) if index == last else _crossing(members, assignment, index)
    return ov.Model(results, list(parameters.values()), f"{model.get_friendly_name()}.{index}")


def _crossing(members: list, assignment: dict[str, int], index: int) -> list:
    """Results for the tensors of this piece that later pieces or the model's outputs read."""
    results = []
    for op in members:
        for output in op.outputs():
            readers = [t.get_node() for t in output.get_target_inputs()]
            if any(r.get_type_name() == "Result" or assignment.get(_name(r), -1) > index
                   for r in readers):
                result = opset.result(output)
                result.output(0).get_tensor().add_names({cut_key(output)})
                results.append(result)
    return results


def stitch(pieces: list[ov.Model], input_names: list[str]) -> ov.Model:
    """One model from consecutive pieces: each cut Parameter's readers read the earlier piece's
    tensor again. `input_names`: the original model's inputs, in order."""
    inputs: dict[str, object] = {}
    produced: dict[str, object] = {}  # cut key -> the tensor (ov.Output) an earlier piece made
    for part in pieces:
        for parameter in part.get_parameters():
            name = _input_name(parameter)
            if name in produced:
                source = produced[name]
            elif name in inputs:
                source = inputs[name].output(0)
            else:  # the first piece that reads an original input keeps its Parameter
                inputs[name] = parameter
                continue
            for target in parameter.output(0).get_target_inputs():
                target.replace_source_output(source)
        if part is not pieces[-1]:
            for result in part.get_results():
                source = result.input_value(0)
                key = next(n for n in result.output(0).get_names() if n.startswith(CUT_PREFIX))
                produced[key] = source
    for source in produced.values():  # the cut names are the pieces' business only
        tensor = source.get_tensor()
        tensor.set_names({n for n in tensor.get_names() if not n.startswith(CUT_PREFIX)})
    return ov.Model(list(pieces[-1].get_results()), [inputs[name] for name in input_names],
                    pieces[-1].get_friendly_name().rsplit(".", 1)[0])


def _input_name(parameter) -> str:
    return parameter.output(0).get_any_name()


def input_names(model: ov.Model) -> list[str]:
    """The names a model's inputs are fed by (tensor names, as optimum-intel feeds the UNet)."""
    return [_input_name(parameter) for parameter in model.get_parameters()]


class TensorStore:
    """The tensors crossing cuts, one .npy file per sample and tensor, so that hundreds of
    calibration samples of a wide cut (the UNet's skip connections) stay on disk, not in RAM."""

    def __init__(self, folder: Path):
        self.folder, self.files = Path(folder), {}

    def _path(self, sample: int, name: str) -> Path:
        number = self.files.setdefault(name, len(self.files))
        return self.folder / f"{sample}-{number}.npy"

    def save(self, sample: int, name: str, value) -> None:
        np.save(self._path(sample, name), np.asarray(value))

    def load(self, sample: int, name: str) -> np.ndarray:
        return np.load(self._path(sample, name))

    def drop(self, name: str, samples: int) -> None:
        for sample in range(samples):
            self._path(sample, name).unlink(missing_ok=True)


def record(part: ov.Model, store: TensorStore, samples: int) -> None:
    """Run a piece (compiled in f32, as NNCF's statistics passes run) on every stored sample and
    store the tensors it hands to later pieces."""
    compiled = ov.Core().compile_model(part, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    request = compiled.create_infer_request()
    names = input_names(part)
    keys = [next(n for n in output.get_names() if n.startswith(CUT_PREFIX))
            for output in compiled.outputs]
    for sample in range(samples):
        outputs = request.infer({name: store.load(sample, name) for name in names})
        for key, output in zip(keys, compiled.outputs):
            store.save(sample, key, outputs[output])


def readers(pieces_inputs: list[list[str]]) -> dict[str, int]:
    """For each stored tensor, the last piece that reads it (after which it can be dropped)."""
    last: dict[str, int] = defaultdict(int)
    for index, names in enumerate(pieces_inputs):
        for name in names:
            last[name] = index
    return dict(last)


def copy_rt_info(source: ov.Model, target: ov.Model) -> None:
    """Model-level rt_info (versions, conversion and quantization parameters) from source to
    target: a model built from nodes starts without it."""
    def walk(info, path):
        for key in info.keys():
            value = info[key]
            if isinstance(value, dict):  # a section
                walk(value, [*path, key])
            else:
                target.set_rt_info(value.value, [*path, key])
    walk(source.get_rt_info(), [])
