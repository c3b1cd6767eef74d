"""Sequence classifier: input layer + ``RNNEncoder`` + ``ClassificationHead``, by composition; optionally read
in sliding windows (``rnnkit.models.windows``) for documents longer than one recurrence should run."""

from __future__ import annotations

from torch import Tensor, nn

from rnnkit.models.encoder import RNNEncoder
from rnnkit.models.frontend import ConvFrontend, PatchFrontend, choose_frontend
from rnnkit.models.heads import ClassificationHead, masked_mean
from rnnkit.models.windows import WindowCombiner, cut_windows, window_layout

# The model options a config may set, with their defaults (those of ClassifierNet).
MODEL_OPTION_DEFAULTS: dict[str, object] = {
    "embedding_dim": 128,
    "hidden_size": 128,
    "num_layers": 2,
    "cell": "lstm",
    "bidirectional": True,
    "dropout": 0.3,
    "input_dropout": 0.0,
    "recurrent_dropout": 0.2,
    "layer_norm": False,
    "residual": None,
    "pooling": "last",
    "packing": "auto",
    "frontend": "auto",
    "frontend_reduction": None,
}
# Known from the data, not chosen in the model options.
DATA_DERIVED_KEYS = ("num_classes", "vocab_size", "num_features", "median_length", "window_length", "window_stride",
                     "window_combine")


class ClassifierNet(nn.Module):
    """Classify whole sequences of token ids or of numeric feature vectors.

    ``inputs -> input layer -> RNNEncoder -> ClassificationHead -> logits``. The input layer is
    an ``nn.Embedding(vocab_size, embedding_dim, padding_idx=0)`` for token ids or an
    ``nn.Linear(num_features, embedding_dim)`` projection for float features; both use
    Xavier-uniform weights (the embedding's pad row is 0, the projection's bias is 0). A front-end
    (``frontend``, numeric input only) replaces the projection: ``inputs -> front-end (T' = ceil(T / r)
    steps) -> RNNEncoder -> ClassificationHead``. ``frontend_choice`` says what was built and why.

    Windows (``window_length`` set): each document is cut into windows of ``window_length`` steps every
    ``window_stride`` steps (``rnnkit.models.windows``), each window goes the usual way (input layer or front-end
    -> RNNEncoder -> pooling, as if it were a sequence of its own), and ``WindowCombiner`` makes one output per
    document from its windows' vectors: the mean of their logits (``window_combine="mean"``) or attention over
    them, then the output layer (``"attention"``), or a document-level RNN over them in order, the hierarchical
    encoder (``"rnn"``). With ``"mean"`` or ``"attention"`` a document no longer than one window is read exactly
    as without windows.

    Args:
        num_classes: K >= 2, number of classes (logits).
        vocab_size: number of token ids including the pad id 0; set for token input.
        num_features: features per step; set for numeric input. Exactly one of
            ``vocab_size`` / ``num_features`` must be given.
        embedding_dim: width of the input layer's output (the encoder's input size).
        hidden_size, num_layers, cell, bidirectional, input_dropout, recurrent_dropout,
            layer_norm, packing: passed to ``RNNEncoder``.
        dropout: locked dropout between encoder layers and dropout before the output layer.
        residual: residual connections in the encoder; ``None`` means on when
            ``num_layers > 2`` (deep stacks benefit, shallow ones don't need it).
        pooling: ``"last"``, ``"attention"`` or ``"mean"`` (see ``ClassificationHead``).
        frontend: ``"auto"``, ``"none"``, ``"conv"`` or ``"patch"`` (``rnnkit.models.frontend``): numeric input
            only; shortens the sequence by ``frontend_reduction`` before the encoder. ``"auto"`` follows
            ``choose_frontend`` on ``median_length`` (none when it is None or for token input). With a
            conv front-end the masked mean of its last block is concatenated to the pooled encoder state.
        frontend_reduction: the front-end's reduction factor r; None: from ``median_length``.
        median_length: the median training sequence length (data-derived), for ``"auto"``.
        window_length: steps per window; None reads every sequence whole (no windows).
        window_stride: steps between window starts, in [1, window_length]; None: ``window_length``.
        window_combine: ``"mean"``, ``"attention"`` or ``"rnn"`` (see above).

    Raises:
        ValueError: if not exactly one of ``vocab_size`` / ``num_features`` is given, a size
            is invalid, or any option is rejected by the encoder or head.
    """

    def __init__(
        self,
        *,
        num_classes: int,
        vocab_size: int | None = None,
        num_features: int | None = None,
        embedding_dim: int = 128,
        hidden_size: int = 128,
        num_layers: int = 2,
        cell: str = "lstm",
        bidirectional: bool = True,
        dropout: float = 0.3,
        input_dropout: float = 0.0,
        recurrent_dropout: float = 0.2,
        layer_norm: bool = False,
        residual: bool | None = None,
        pooling: str = "last",
        packing: str = "auto",
        frontend: str = "auto",
        frontend_reduction: int | None = None,
        median_length: float | None = None,
        window_length: int | None = None,
        window_stride: int | None = None,
        window_combine: str = "mean",
    ) -> None:
        super().__init__()
        if (vocab_size is None) == (num_features is None):
            raise ValueError(
                "give exactly one of vocab_size (token-id input) or num_features (numeric input), "
                f"got vocab_size={vocab_size!r} and num_features={num_features!r}"
            )
        for name, value, low in (
            ("num_classes", num_classes, 2),
            ("embedding_dim", embedding_dim, 1),
            ("vocab_size", vocab_size, 2),  # id 0 is reserved for padding, so at least one real id
            ("num_features", num_features, 1),
        ):
            if value is None and name in ("vocab_size", "num_features"):
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")

        self.num_classes = num_classes
        self.token_input = vocab_size is not None
        self.frontend_choice = choose_frontend(frontend, frontend_reduction, token_input=self.token_input,
                                               median_length=median_length)
        kind, r = self.frontend_choice.kind, self.frontend_choice.reduction
        # conv: the FCN-style blocks' global average pooling also goes to the head (extra features)
        self.frontend: nn.Module | None = None
        gap = 0
        if kind == "conv":
            self.frontend = ConvFrontend(num_features, embedding_dim, r)
            gap = embedding_dim
        elif kind == "patch":
            self.frontend = PatchFrontend(num_features, embedding_dim, r)
        if self.token_input:
            self.embedding: nn.Module | None = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)
            nn.init.xavier_uniform_(self.embedding.weight)
            self.embedding.weight.data[0].zero_()  # pad id must embed to exactly 0
        elif self.frontend is not None:
            self.embedding = None  # the front-end projects the features (to embedding_dim channels)
        else:
            self.embedding = nn.Linear(num_features, embedding_dim)
            nn.init.xavier_uniform_(self.embedding.weight)
            nn.init.zeros_(self.embedding.bias)

        if residual is None:
            residual = num_layers > 2
        self.encoder = RNNEncoder(
            embedding_dim,
            hidden_size,
            num_layers=num_layers,
            cell=cell,
            bidirectional=bidirectional,
            dropout=dropout,
            input_dropout=input_dropout,
            recurrent_dropout=recurrent_dropout,
            layer_norm=layer_norm,
            residual=residual,
            packing=packing,
        )
        self.head = ClassificationHead(self.encoder.output_size, num_classes, pooling=pooling, dropout=dropout,
                                       extra_size=gap)
        self.window_length = self.window_stride = None
        self.windows: WindowCombiner | None = None
        if window_length is not None:
            stride = window_length if window_stride is None else window_stride
            for name, value in (("window_length", window_length), ("window_stride", stride)):
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
            if stride > window_length:
                raise ValueError(f"window_stride {stride} > window_length {window_length} would skip steps")
            self.window_length, self.window_stride = window_length, stride
            self.windows = WindowCombiner(self.encoder.output_size + gap, window_combine, cell=cell, packing=packing)

    def forward(self, inputs: Tensor, lengths: Tensor, mask: Tensor) -> Tensor:
        """Compute class logits for a padded batch.

        Args:
            inputs: (B, T) integer token ids (0 = pad) for token input, or (B, T, F) float
                features for numeric input. Values at pad positions are ignored.
            lengths: (B,) int64 on CPU, each in [1, T].
            mask: (B, T) bool, True at real steps.

        Returns:
            (B, K) unnormalised logits, one row per sequence (per document, with windows).

        Raises:
            ValueError: if ``inputs`` has the wrong rank or dtype for this model's input kind,
                or the encoder rejects the shapes.
        """
        self._check_inputs(inputs)
        if self.windows is None:
            return self.head.logits(self.features(inputs, lengths, mask))
        doc, start, size = window_layout(lengths, self.window_length, self.window_stride)  # (N,) each
        windows, window_lengths, window_mask = cut_windows(inputs, doc, start, size)  # (N, L'[, F]), (N,), (N, L')
        vectors = self.features(windows, window_lengths, window_mask)  # (N, D)
        return self.windows(vectors, doc, inputs.shape[0], self.head.logits)  # (B, K)

    def _check_inputs(self, inputs: Tensor) -> None:
        if self.token_input:
            if inputs.dim() != 2 or inputs.is_floating_point() or inputs.is_complex():
                raise ValueError(
                    "this classifier takes token ids: inputs must be an integer tensor of shape (B, T), "
                    f"got {inputs.dtype} of shape {tuple(inputs.shape)}"
                )
        elif inputs.dim() != 3 or not inputs.is_floating_point():
            raise ValueError(
                "this classifier takes numeric features: inputs must be a float tensor of shape "
                f"(B, T, F), got {inputs.dtype} of shape {tuple(inputs.shape)}"
            )

    def features(self, inputs: Tensor, lengths: Tensor, mask: Tensor) -> Tensor:
        """The vector per sequence that the output layer reads (before its dropout): input layer or front-end ->
        encoder -> pooling (and the conv front-end's mean of its last block).

        Args:
            inputs: (B, T) token ids or (B, T, F) features; lengths (B,) on CPU; mask (B, T), as in ``forward``.

        Returns:
            (B, D) with D = ``encoder.output_size + head.extra_size``.
        """
        if self.token_input:
            # Pads may hold any id (even out of range): map them to the pad id before lookup.
            x = self.embedding(inputs.masked_fill(~mask, 0))  # (B, T, E)
        else:
            # Zero pads before the projection so NaN/inf garbage cannot produce NaN there.
            inputs = inputs.masked_fill(~mask.unsqueeze(-1), 0.0)
            if self.frontend is not None:
                # (B, T', E) with T' = ceil(T / r), and the lengths / mask of the shortened sequences
                h, short_lengths, short_mask = self.frontend(inputs, lengths, mask)
                extra = masked_mean(h, short_mask) if self.head.extra_size else None  # (B, E) or None
                return self.head.features(self.encoder(h, short_lengths, short_mask), short_mask, extra)
            x = self.embedding(inputs)  # (B, T, E)
        return self.head.features(self.encoder(x, lengths, mask), mask)


def build_classifier(
    model_options: dict,
    *,
    num_classes: int,
    vocab_size: int | None = None,
    num_features: int | None = None,
    median_length: float | None = None,
    window_length: int | None = None,
    window_stride: int | None = None,
    window_combine: str = "mean",
) -> ClassifierNet:
    """Build a ``ClassifierNet`` from the config's model options plus data-derived sizes.

    Args:
        model_options: any subset of ``MODEL_OPTION_DEFAULTS``' keys (missing keys take the
            defaults of ``ClassifierNet``).
        num_classes: number of classes found in the data.
        vocab_size: vocabulary size (with pad id 0) for token input.
        num_features: features per step for numeric input.
        median_length: the median training sequence length (``model.frontend: auto`` decides with it).
        window_length, window_stride, window_combine: read documents in windows (``ClassifierNet``); None: whole.

    Returns:
        The constructed model (in training mode, on CPU).

    Raises:
        ValueError: if ``model_options`` has unknown keys (all are listed, with the allowed
            ones), contains a data-derived key, or holds an invalid value.
    """
    if not isinstance(model_options, dict):
        raise ValueError(f"model options must be a mapping, got {type(model_options).__name__}")
    data_keys = sorted(k for k in model_options if k in DATA_DERIVED_KEYS)
    if data_keys:
        raise ValueError(
            f"model options must not set {data_keys}: these come from the data; remove them from the config"
        )
    unknown = sorted(str(k) for k in model_options if k not in MODEL_OPTION_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown model option(s) {unknown}; allowed options are {sorted(MODEL_OPTION_DEFAULTS)}")
    return ClassifierNet(
        num_classes=num_classes, vocab_size=vocab_size, num_features=num_features, median_length=median_length,
        window_length=window_length, window_stride=window_stride, window_combine=window_combine, **model_options
    )


__all__ = ["DATA_DERIVED_KEYS", "MODEL_OPTION_DEFAULTS", "ClassifierNet", "build_classifier"]
