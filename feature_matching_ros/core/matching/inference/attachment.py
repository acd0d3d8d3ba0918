"""Attaching a BackendNetwork to an extractor's dense part (XFeat's network, ALIKED's dense map,
SuperPoint's forward) or to each transformer layer of LightGlue, and the status of those attached."""

from __future__ import annotations

import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ...errors import ConfigError
from .backends import check_backend_name
from .network import BackendNetwork


@dataclass
class _Route:
    """Where an extractor's dense part lives and how to send it to a backend."""

    network: str
    weight_id: str
    owner: nn.Module
    function: Callable[[torch.Tensor], Any]
    install: Callable[[BackendNetwork], None]
    channels_last: tuple[int, ...] = ()


class _RoutedXFeat(nn.Module):
    """Stands in for kornia XFeat's ``net``: the backend for the forward pass, the torch network's
    fine matcher (XFeat*) as before."""

    def __init__(self, net: nn.Module, runner: BackendNetwork) -> None:
        super().__init__()
        self.torch_net = net
        self.fine_matcher = net.fine_matcher
        self.runner = runner

    def forward(self, x: torch.Tensor) -> Any:
        return self.runner(x)


def _route(extractor: Any) -> _Route:
    from ..extractors import ALIKEDExtractor, OwnNetworkExtractor, XFeatExtractor

    if isinstance(extractor, XFeatExtractor):
        model = extractor.model
        net = model.net

        def install_xfeat(runner: BackendNetwork) -> None:
            model.net = _RoutedXFeat(net, runner)

        return _Route(extractor.name, "xfeat", net, net.forward, install_xfeat)
    if isinstance(extractor, ALIKEDExtractor):

        def install_aliked(runner: BackendNetwork) -> None:
            extractor.dense_map = runner

        model = extractor.model
        # The 128-channel full-resolution feature map leaves the backend channels-last: converting it
        # to [B x C x H x W] took OpenVINO 117 of 558 ms (profiled at 640x480, 2 busy cores).
        return _Route(
            extractor.name, extractor.name, model, model.extract_dense_map, install_aliked, channels_last=(0,)
        )
    if isinstance(extractor, OwnNetworkExtractor) and extractor.name == "superpoint":
        model = extractor.model
        function = types.MethodType(type(model).forward, model)

        def install_superpoint(runner: BackendNetwork) -> None:
            model.forward = runner  # our own model: detect() calls it for the dense maps

        return _Route("superpoint", "superpoint-v1", model, function, install_superpoint)
    name = getattr(extractor, "name", type(extractor).__name__)
    raise ConfigError(
        f"extractor {name!r} has no exportable network; inference backends cover xfeat, xfeat_dense, "
        "aliked-* and superpoint"
    )


class _RoutedLayer(nn.Module):
    """Stands in for one transformer layer of kornia's LightGlue: the backend runs the layer,
    LightGlue's own loop keeps deciding in torch when to stop and which points to prune. Padded
    (masked) batches, which the package never sends, run the torch layer."""

    def __init__(self, layer: nn.Module, runner: BackendNetwork) -> None:
        super().__init__()
        self.torch_layer = layer
        self.runner = runner

    def forward(
        self,
        desc0: torch.Tensor,
        desc1: torch.Tensor,
        encoding0: torch.Tensor,
        encoding1: torch.Tensor,
        mask0: torch.Tensor | None = None,
        mask1: torch.Tensor | None = None,
    ) -> Any:
        if mask0 is not None or mask1 is not None:
            return self.torch_layer(desc0, desc1, encoding0, encoding1, mask0=mask0, mask1=mask1)
        return self.runner(desc0, desc1, encoding0, encoding1)


# A layer's inputs: descriptors [B x M x D], [B x N x D], rotary encodings [2 x B x 1 x M x d], [.. N ..].
LAYER_DYNAMIC = ({1: "m"}, {1: "n"}, {3: "m"}, {3: "n"})


def attach_matcher(
    matcher: Any, backend: str, *, cache_dir: str | Path | None = None
) -> list[BackendNetwork]:
    """Run each transformer layer of a LightGlue matcher in ``backend`` (one export per layer with
    variable keypoint counts, verified on its first real input); other matchers: nothing."""
    from .. import weights
    from ..matchers import LIGHTGLUE_MODELS, LightGlueMatcher

    check_backend_name(backend)
    if backend == "torch" or not isinstance(matcher, LightGlueMatcher):
        return []
    features = "xfeat" if matcher.name == "lighterglue" else matcher.name.split("-")[0]
    sha = weights.spec_for(LIGHTGLUE_MODELS[features]["weights"]).sha256
    layers = matcher.model.transformers
    runners = []
    for index, layer in enumerate(layers):
        runner = BackendNetwork(
            f"{matcher.name}-layer{index}",
            layer,
            layer.forward,
            sha,
            backend,
            cache_dir=cache_dir,
            dynamic=LAYER_DYNAMIC,
        )
        layers[index] = _RoutedLayer(layer, runner)
        runners.append(runner)
    matcher.backend_layers = runners
    return runners


def supports(extractor: Any) -> bool:
    try:
        _route(extractor)
    except ConfigError:
        return False
    return True


def attach(
    extractor: Any,
    backend: str,
    *,
    cache_dir: str | Path | None = None,
    weights_dir: str | Path | None = None,
) -> BackendNetwork | None:
    """Run ``extractor``'s dense network in ``backend`` from now on (None for ``torch``).

    The extractor's ``backend`` attribute holds the BackendNetwork; its ``status`` says when torch
    runs instead. A ConfigError for an unknown backend or an extractor without a dense network.
    """
    from .. import weights

    check_backend_name(backend)
    if backend == "torch":
        return None
    route = _route(extractor)
    sha = weights.spec_for(route.weight_id).sha256
    runner = BackendNetwork(
        route.network,
        route.owner,
        route.function,
        sha,
        backend,
        cache_dir=cache_dir,
        channels_last=route.channels_last,
    )
    route.install(runner)
    extractor.backend = runner
    return runner


def status(component: Any) -> str:
    """Empty while the backend of an extractor, a matcher or a pipeline's both runs (or torch runs by
    choice), else why torch runs."""
    if hasattr(component, "extractor") and hasattr(component, "matcher"):
        return "; ".join(filter(None, (status(component.extractor), status(component.matcher))))
    runner = getattr(component, "backend", None)
    runners = [runner] if isinstance(runner, BackendNetwork) else getattr(component, "backend_layers", [])
    return "; ".join(r.status for r in runners if r.status)
