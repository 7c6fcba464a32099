"""Inference pipeline: any size, tiling equivalence, motion on a bounded copy, devices, loading once."""

import warnings

import numpy as np
import pytest
import torch

from blurvid import pipeline, tiling
from blurvid.models import BlurredImageEncoder, DeblurNet, DMConfig, RecurrentVideoDecoder, VideoConfig

TINY_DM = DMConfig(widths=(8, 8, 12, 16), growth=(4, 4, 4, 4), rdbs=(1, 1, 1, 1), rdb_layers=2)
TINY_V = VideoConfig(widths=(4, 4, 8, 8), hidden=8, bie_widths=(4, 4, 4, 8, 8, 8))
CPU = torch.device("cpu")


def _dm(seed=0):
    torch.manual_seed(seed)
    dm = DeblurNet(TINY_DM)
    with torch.no_grad():  # a visible, non-trivial residual
        dm.tail[-1].weight.normal_(0, 0.05)
    return dm


def _tiny_animator() -> pipeline.Animator:
    """An Animator of tiny untrained networks (seed 0) with a 32 px motion size."""
    torch.manual_seed(0)
    return pipeline.Animator(
        pipeline.Deblurrer(_dm(), CPU),
        BlurredImageEncoder(TINY_V),
        RecurrentVideoDecoder(TINY_V),
        motion_size=32,
    )


@pytest.mark.parametrize(("h", "w"), [(1, 1), (17, 45), (64, 64), (33, 130)])
def test_deblur_any_size(h, w):
    img = np.random.default_rng(0).random((h, w, 3), dtype=np.float32)
    out = pipeline.Deblurrer(_dm(), CPU)(img)
    assert out.shape == (h, w, 3) and out.dtype == np.float32
    assert 0 <= out.min() and out.max() <= 1


def test_tiled_close_to_untiled():
    # A random network's reach is the whole tile (its 1/16-scale features see everything), so tiling can
    # only be approximate here; the trained DM's tolerance is measured by benchmarks/bench_tiling.py.
    img = np.random.default_rng(1).random((300, 460, 3), dtype=np.float32)
    ref = pipeline.Deblurrer(_dm(), CPU, tile=4096)(img)
    tiles = []
    out = pipeline.Deblurrer(_dm(), CPU, tile=256, overlap=64)(img, on_tile=lambda d, n: tiles.append(n))
    assert tiles[-1] == len(tiling.tiles(300, 460, 256, 64)) > 1  # really tiled, each tile once
    change = np.abs(ref - img).mean()  # how much the network changes the image
    assert np.abs(out - ref).mean() < 0.2 * change


def test_bf16_matches_fp32_within_tolerance():
    img = np.random.default_rng(2).random((40, 70, 3), dtype=np.float32)
    a = pipeline.Deblurrer(_dm(), CPU, torch.float32)(img)
    b = pipeline.Deblurrer(_dm(), CPU, torch.bfloat16)(img)
    assert np.abs(a - b).max() < 3e-2 and np.abs(a - b).mean() < 3e-3


def test_animator_frames_and_bounded_motion_size():
    torch.manual_seed(0)
    rvd = RecurrentVideoDecoder(TINY_V)
    with torch.no_grad():
        for head in [rvd.decoder.flow8, *rvd.decoder.flows]:
            head.weight.normal_(0, 0.3)
    an = pipeline.Animator(pipeline.Deblurrer(_dm(), CPU), BlurredImageEncoder(TINY_V), rvd, motion_size=32)
    img = np.random.default_rng(3).random((45, 101, 3), dtype=np.float32)
    frames = an(img, frames=7)
    assert len(frames) == 7 and all(f.shape == (45, 101, 3) for f in frames)
    assert max(np.abs(f - frames[0]).mean() for f in frames) > 1e-4  # the frames move
    x = pipeline.to_tensor(img, CPU)
    flows = an.flows(x, x, 5)
    assert flows.shape == (5, 2, 45, 101)
    # frames upsample one flow at a time: the same pixels as warping with all full-size flows at once
    sharp = img * 0.5 + 0.25
    s = pipeline.to_tensor(sharp, CPU)
    full = an.flows(x, s, 5)
    lazy = an(img, frames=5, sharp=sharp)
    for n in range(5):
        ref = pipeline.to_numpy(pipeline.warp(s, full[n : n + 1]))
        np.testing.assert_allclose(lazy[n], ref, atol=1e-6)
    # without a deblurrer (evaluation with the true centre): the same frames from a given sharp photo
    bare = pipeline.Animator(None, an.bie, an.rvd, motion_size=32, device=CPU)
    assert bare.dtype == torch.float32
    np.testing.assert_allclose(bare(img, frames=5, sharp=sharp)[2], lazy[2], atol=1e-6)
    with pytest.raises(ValueError, match="sharp"):
        bare(img, frames=5)
    with pytest.raises(ValueError, match="device"):
        pipeline.Animator(None, an.bie, an.rvd)


def test_the_bie_reads_the_blurred_photo_first_and_the_rvd_warps_the_sharp_one():
    """The BIE was trained on (blurred, sharp) in that order and the RVD decodes motion around the
    sharp photo: swapped inputs still give flows of the right shape, so only the order tells."""
    an = _tiny_animator()
    seen: dict[str, tuple[torch.Tensor, ...]] = {}
    bie_forward, rvd_forward = an.bie.forward, an.rvd.forward

    def bie(blurred, sharp):  # type: ignore[no-untyped-def]
        seen["bie"] = (blurred, sharp)
        return bie_forward(blurred, sharp)

    def rvd(emb, sharp, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen["rvd"] = (sharp,)
        return rvd_forward(emb, sharp, *args, **kwargs)

    an.bie.forward, an.rvd.forward = bie, rvd  # type: ignore[method-assign]
    blurred, sharp = torch.full((1, 3, 24, 40), 0.2), torch.full((1, 3, 24, 40), 0.8)
    an.flows(blurred, sharp, 5)
    assert torch.allclose(seen["bie"][0], torch.tensor(0.2)) and torch.allclose(
        seen["bie"][1], torch.tensor(0.8)
    )
    assert torch.allclose(seen["rvd"][0], torch.tensor(0.8))


def test_frames_made_in_bands_are_those_of_one_warp_bit_for_bit():
    # animate makes each frame band by band, converted to uint8 band by band: the same bytes as converting
    # the float frame of one warp (io.to_uint8 is what the CLI passes)
    from blurvid.io import to_uint8

    torch.manual_seed(1)
    s = torch.rand(1, 3, 29, 41)
    flow = torch.randn(1, 2, 29, 41) * 5
    ref = pipeline.to_numpy(pipeline.warp(s, flow))
    for band in (1, 41, 100, 29 * 41):  # one row, several rows, the whole frame
        out = pipeline.warped_frame(s, flow, band_pixels=band)
        assert out.dtype == np.float32 and out.flags.c_contiguous and np.array_equal(out, ref)
        out8 = pipeline.warped_frame(s, flow, convert=to_uint8, band_pixels=band)
        assert out8.dtype == np.uint8 and np.array_equal(out8, to_uint8(ref))
    an = _tiny_animator()
    img = np.random.default_rng(4).random((64, 96, 3), dtype=np.float32)  # multiples of 32 and 8: no padding
    before = img.copy()
    floats = list(an.frames(img, 4))
    small = list(an.frames(img, 4, convert=to_uint8))
    assert all(
        a.dtype == np.uint8 and np.array_equal(a, to_uint8(f)) for a, f in zip(small, floats, strict=True)
    )
    an.deblurrer(img)
    assert np.array_equal(img, before)  # the networks see a view of the photo (to_tensor): never changed


def test_frames_let_go_of_the_photo_once_the_motion_is_known():
    # animate --size 0 of a big photo: the frames are made without the photo held (only the sharp one)
    import gc
    import weakref

    an = _tiny_animator()
    img = np.random.default_rng(6).random((40, 56, 3), dtype=np.float32)
    gone = weakref.ref(img)
    made = an.frames(img, 3)
    del img
    first = next(made)
    gc.collect()
    assert gone() is None and first.shape == (40, 56, 3) and len(list(made)) == 2


def test_to_tensor_shares_an_in_range_float32_photo_and_copies_otherwise():
    # a big photo is not held twice: a writable float32 array in [0, 1] is viewed, never changed
    img = np.random.default_rng(5).random((6, 7, 3), dtype=np.float32)
    before = img.copy()
    x = pipeline.to_tensor(img, CPU)
    assert np.shares_memory(x.numpy(), img) and np.array_equal(x[0].permute(1, 2, 0).numpy(), img)
    margin = img.copy()
    margin[0, 0, 0], margin[1, 1, 1] = -5e-4, 1.0005  # within the rounding margin: clipped into a copy
    y = pipeline.to_tensor(margin, CPU)
    assert not np.shares_memory(y.numpy(), margin) and float(y.min()) == 0.0 and float(y.max()) == 1.0
    assert margin[0, 0, 0] == np.float32(-5e-4)  # the caller's array is left as it was
    frozen = img.copy()
    frozen.flags.writeable = False
    assert not np.shares_memory(pipeline.to_tensor(frozen, CPU).numpy(), frozen)
    u8 = (img * 255).astype(np.uint8)
    want = u8.astype(np.float32) / np.float32(255)  # in-place scaling: the same bits as a division
    assert np.array_equal(pipeline.to_tensor(u8, CPU)[0].permute(1, 2, 0).numpy(), want)
    assert np.array_equal(img, before)


def test_to_numpy_in_place_gives_the_same_values():
    x = torch.rand(1, 3, 5, 8) * 1.4 - 0.2
    ref = pipeline.to_numpy(x)
    assert float(x.min()) < 0  # not in place: x untouched
    with torch.inference_mode():
        y = x.clone()  # an inference tensor, like the pipeline's results
    out = pipeline.to_numpy(y, inplace=True)
    assert np.array_equal(out, ref) and np.shares_memory(out, y.numpy())
    assert np.array_equal(pipeline.to_numpy(x.bfloat16(), inplace=True), pipeline.to_numpy(x.bfloat16()))


def test_flow_resize_scales_vectors():
    f = torch.ones(1, 2, 10, 20)
    out = pipeline.resize_flow(f, (40, 40))
    assert torch.allclose(out[:, 0], torch.full_like(out[:, 0], 2.0))
    assert torch.allclose(out[:, 1], torch.full_like(out[:, 1], 4.0))


def test_bounded_size():
    assert pipeline.bounded_size(3000, 4000, 512) == (384, 512)
    assert pipeline.bounded_size(100, 80, 512) == (100, 80)  # never upscaled


def test_device_and_precision_selection():
    assert pipeline.select_device("cpu").type == "cpu"
    assert pipeline.select_device("CPU").type == pipeline.select_device("cpu:0").type == "cpu"
    if not torch.cuda.is_available():
        assert pipeline.select_device("auto").type == "cpu"
        with pytest.raises(ValueError, match="no CUDA"):
            pipeline.select_device("cuda")
    for bad in ("tpu", "cpux", "cpu:x", "mps"):
        with pytest.raises(ValueError, match="unknown device"):
            pipeline.select_device(bad)
    assert pipeline.resolve_precision("fp32", CPU) is torch.float32
    assert pipeline.resolve_precision("half", CPU) is torch.bfloat16
    with pytest.raises(ValueError):
        pipeline.resolve_precision("fp16", CPU)


@pytest.mark.parametrize("native_bf16", [True, False])
def test_precision_auto_and_half_follow_the_hardware(monkeypatch, native_bf16):
    """'auto' is bf16 only on CPUs with native bf16 (emulated bf16 is slower than fp32) and fp32 on
    CUDA; 'half' is fp16 on CUDA. Only the device's type is read, so no GPU is needed."""
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: native_bf16)
    cuda = torch.device("cuda")
    assert pipeline.resolve_precision("auto", CPU) is (torch.bfloat16 if native_bf16 else torch.float32)
    assert pipeline.resolve_precision("auto", cuda) is torch.float32
    assert pipeline.resolve_precision("half", cuda) is torch.float16
    assert pipeline.resolve_precision("fp16", cuda) is torch.float16


def test_weights_load_once_per_process(tiny_weights, monkeypatch):
    from blurvid import weights

    calls = []
    real = weights.load_checkpoint
    monkeypatch.setattr(weights, "load_checkpoint", lambda *a, **k: calls.append(a) or real(*a, **k))
    a = pipeline.load_model("dm")
    b = pipeline.load_model("dm")
    c = pipeline.load_model("dm", repo_id="someone/else", download=False)  # where a download would come from
    assert a is b is c and len(calls) == 1


# ------------------------------------------------------------------ session 19: API audit


def test_integer_images_are_scaled_and_out_of_range_floats_refused():
    """uint8 / uint16 photos are scaled to [0, 1] (uint8 came back almost all white); 0-255 floats,
    NaN, empty and other dtypes are one clear ValueError."""
    rng = np.random.default_rng(3)
    img = rng.random((20, 30, 3), dtype=np.float32)
    deblur = pipeline.Deblurrer(_dm(), CPU)
    ref = deblur(img)
    u8 = deblur(np.round(img * 255).astype(np.uint8))
    u16 = deblur(np.round(img * 65535).astype(np.uint16))
    assert np.abs(u8 - ref).max() < 0.01 and np.abs(u16 - ref).max() < 1e-3
    nan = img.copy()
    nan[3, 4, 1] = np.nan
    for bad, message in [
        (img * 255, "values in \\[0, 1\\]"),
        (nan, "NaN"),
        (np.zeros((0, 5, 3), np.float32), "empty"),
        (img.astype(np.complex64), "dtype"),
        ((img * 1000).astype(np.uint32), "dtype"),
    ]:
        with pytest.raises(ValueError, match=message):
            deblur(bad)


@pytest.mark.parametrize("tile", [64, 100, 160])
def test_small_tiles_work(tile):
    """--tile accepts 64 and up: the overlap shrinks with the tile (it was a fixed 128 px)."""
    img = np.random.default_rng(4).random((200, 300, 3), dtype=np.float32)
    seen = []
    out = pipeline.Deblurrer(_dm(), CPU, tile=tile)(img, on_tile=lambda d, n: seen.append(n))
    assert out.shape == img.shape and seen and seen[-1] > 1


def test_a_module_is_not_changed_under_its_owner_and_cuda_is_checked():
    """The pipelines run a copy of a module that is in training mode, on another device or laid out
    otherwise; the caller's module keeps its mode, device and (contiguous, savable) weights."""
    dm = _dm().train()  # e.g. a training run's network, handed over for a look
    img = np.random.default_rng(1).random((40, 56, 3), dtype=np.float32)
    out = pipeline.Deblurrer(dm, CPU)(img)
    assert dm.training and all(p.is_contiguous() for p in dm.parameters())
    np.testing.assert_allclose(out, pipeline.Deblurrer(_dm(), CPU)(img), atol=1e-6)
    ready = pipeline.Deblurrer(dm, CPU).dm
    assert pipeline.Deblurrer(ready, CPU).dm is ready  # eval, on the CPU, channels-last: used as it is
    bie = BlurredImageEncoder(TINY_V).train()
    pipeline.Animator(pipeline.Deblurrer(ready, CPU), bie, RecurrentVideoDecoder(TINY_V))
    assert bie.training
    if not torch.cuda.is_available():
        for make in (
            lambda: pipeline.Deblurrer(_dm(), torch.device("cuda")),
            lambda: pipeline.ShakeRemover("cuda"),
        ):
            with pytest.raises(ValueError, match="no CUDA GPU is available"):
                make()


def test_load_model_refuses_a_checkpoint_of_another_arch(tiny_weights):
    from blurvid import weights

    bie = weights.default_spec("bie").name
    with pytest.raises(weights.WeightsError, match=f"{bie} is a 'bie' checkpoint, not a 'dm' one"):
        pipeline.load_model("dm", bie)


def test_load_model_shares_one_ready_module_per_checkpoint(tiny_weights):
    """Every way of naming the default DM gives the same module, which the pipeline runs without a copy."""
    import blurvid

    dm = pipeline.load_model("dm")
    assert pipeline.load_model("dm", "tiny-dm") is dm and pipeline.load_model(arch="dm") is dm
    assert blurvid.load_model("dm") is dm
    assert pipeline.Deblurrer(dm, CPU).dm is dm  # eval, CPU, channels-last already: no copy per call


def test_a_slow_load_does_not_hold_up_the_other_checkpoints(tiny_weights, monkeypatch):
    """One lock was held for every load: a DM download of minutes blocked loading the BIE (cached too)."""
    import threading

    real, started, release = pipeline._load, threading.Event(), threading.Event()

    def load(arch, name, repo_id, download):  # type: ignore[no-untyped-def]
        if arch == "dm":
            started.set()
            assert release.wait(30)
        return real(arch, name, repo_id, download)

    monkeypatch.setattr(pipeline, "_load", load)
    got: dict = {}
    slow = [
        threading.Thread(target=lambda i=i: got.setdefault(i, pipeline.load_model("dm"))) for i in range(2)
    ]
    for t in slow:
        t.start()
    assert started.wait(30)
    bie = pipeline.load_model("bie")  # returns while the DM is still loading
    assert "dm" not in str(got) and isinstance(bie, torch.nn.Module)
    release.set()
    for t in slow:
        t.join(30)
    assert got[0] is got[1] is pipeline.load_model("dm")  # both waiting callers got the one module


WIDER = {**TINY_DM.to_dict(), "widths": (8, 8, 8, 16)}


@pytest.mark.parametrize(
    ("config", "registered", "message"),
    [
        (WIDER, WIDER, r"its weights do not fit the architecture it stores \(\d+ of another shape: "),
        (
            {**TINY_DM.to_dict(), "attention": True},
            None,
            r"settings this blurvid .* does not know \(attention\)",
        ),
        ({**TINY_DM.to_dict(), "widths": "wide"}, None, "its architecture settings are invalid"),
        # the file holds a network, but not the one its registry entry names
        (TINY_DM.to_dict(), WIDER, r"another architecture than its registry entry describes \(.*widths"),
    ],
)
def test_a_checkpoint_that_does_not_hold_its_stored_network_is_one_weights_error(
    tiny_weights, tmp_path, monkeypatch, config, registered, message
):
    from blurvid import weights

    state = DeblurNet(TINY_DM).state_dict()
    sha = weights.save_checkpoint(tmp_path / "odd.safetensors", state, arch="dm", config=config)
    spec = weights.CheckpointSpec(
        name="odd-dm",
        arch="dm",
        file="odd.safetensors",
        sha256=sha,
        config=registered or config,
        license="MIT",
        source="test",
        description="",
        default=False,
    )
    registry = tmp_path / "registry.json"
    registry.write_text(tiny_weights["registry"].read_text())
    weights.register_checkpoint(spec, registry)
    monkeypatch.setenv("BLURVID_REGISTRY", str(registry))
    monkeypatch.setenv("BLURVID_CACHE_DIR", str(tmp_path))
    with pytest.raises(weights.WeightsError, match=message) as e:
        pipeline.load_model("dm", "odd-dm")
    assert "\n" not in str(e.value) and str(e.value).startswith("checkpoint odd-dm (")
    assert len(str(e.value)) < 400  # a line, not a list of every parameter


def test_the_animator_runs_the_rvd_for_the_frame_count_it_was_trained_with():
    """A video model trained with N = 5 spans the exposure in 5 steps (it was always run for 9)."""
    five = VideoConfig.from_dict({**TINY_V.to_dict(), "frames": 5})
    deb = pipeline.Deblurrer(_dm(), CPU)
    assert pipeline.Animator(deb, BlurredImageEncoder(five), RecurrentVideoDecoder(five)).native_frames == 5
    assert (
        pipeline.Animator(deb, BlurredImageEncoder(TINY_V), RecurrentVideoDecoder(TINY_V)).native_frames == 9
    )
    assert (
        pipeline.Animator(
            deb, BlurredImageEncoder(TINY_V), RecurrentVideoDecoder(TINY_V), native_frames=None
        ).native_frames
        is None
    )


def test_fit_image_shrinks_only_and_side_by_side_puts_the_photo_first():
    img = np.random.default_rng(5).random((40, 100, 3), dtype=np.float32)
    assert pipeline.fit_image(img, 0) is img and pipeline.fit_image(img, 100) is img
    small = pipeline.fit_image(img, 50)
    assert small.shape == (20, 50, 3) and abs(float(small.mean()) - float(img.mean())) < 0.01
    left = np.zeros((4, 3, 3), np.uint8)
    pair = pipeline.side_by_side(left, [np.full((4, 5, 3), 7, np.uint8)])
    assert (
        len(pair) == 1
        and pair[0].shape == (4, 8, 3)
        and pair[0][:, :3].max() == 0
        and pair[0][:, 3:].min() == 7
    )
    # a boomerang lists each frame twice: one combined copy each, the same pixels
    a, b = np.full((4, 5, 3), 1, np.uint8), np.full((4, 5, 3), 2, np.uint8)
    seq = pipeline.side_by_side(left, [a, b, a])
    assert seq[0] is seq[2] and seq[1] is not seq[0] and [int(f[0, -1, 0]) for f in seq] == [1, 2, 1]


def test_torch_inputs_are_read_detached_and_in_any_float_precision():
    img = torch.rand(9, 11, 3)
    want = pipeline.to_tensor(img.numpy(), CPU)
    assert torch.equal(pipeline.to_tensor(img.clone().requires_grad_(), CPU), want)
    assert torch.allclose(pipeline.to_tensor(img.bfloat16(), CPU), want, atol=4e-3)
    assert pipeline.to_tensor((img * 255).to(torch.uint8), CPU).shape == (1, 3, 9, 11)


@pytest.mark.parametrize(
    ("x", "message"),
    [
        (torch.rand(2, 3, 8, 8), "one .1, 3, H, W. image"),
        (torch.rand(3, 8, 8), "one .1, 3, H, W. image"),
        (torch.rand(1, 3, 8, 8) * 255, "values must lie in"),
        (torch.full((1, 3, 8, 8), float("nan")), "values must lie in"),
        ((torch.rand(1, 3, 8, 8) * 255).to(torch.uint8), "divide by 255"),
    ],
)
def test_deblurrer_tensor_refuses_what_it_cannot_deblur(x, message):
    with pytest.raises(ValueError, match=message):
        pipeline.Deblurrer(_dm(), CPU).tensor(x)


@pytest.mark.parametrize(
    ("x", "message"),
    [
        (torch.rand(1, 3, 8, 8) * 255, "values must lie in"),
        ((torch.rand(1, 3, 8, 8) * 255).to(torch.uint8), "divide by 255"),
        (torch.rand(3, 8, 8), r"one \(1, C, H, W\) image"),
    ],
)
def test_shake_remover_and_animator_refuse_what_the_deblurrer_refuses(x, message):
    """0-255 input came back all white from ShakeRemover, and gave flows from the Animator."""
    remover = pipeline.ShakeRemover(CPU)
    for call in (remover.tensor, remover.kernel):
        with pytest.raises(ValueError, match=message):
            call(x)
    an = pipeline.Animator(
        pipeline.Deblurrer(_dm(), CPU), BlurredImageEncoder(TINY_V), RecurrentVideoDecoder(TINY_V)
    )
    with pytest.raises(ValueError, match=message.replace("C, H", "3, H")):
        an.flows(x, x, 3)
    ok = torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError, match="they must match"):
        an.flows(ok, ok[..., :8], 3)


@pytest.mark.parametrize("precision", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_deblurrer_tensor_takes_any_float_type(precision, dtype):
    """An fp32 network raised torch's "Input type (c10::Half) and bias type (float)" on half input."""
    deb = pipeline.Deblurrer(_dm(), CPU, precision)
    x = torch.rand(1, 3, 20, 28)
    y = deb.tensor(x.to(dtype))
    assert y.dtype == torch.float32 and y.shape == x.shape
    assert torch.allclose(y, deb.tensor(x.to(dtype).float()), atol=1e-6)


@pytest.mark.parametrize("tile", [0, -1, 16, 100.5, True])
def test_deblurrer_tile_must_be_a_size(tile):
    with pytest.raises(ValueError, match="tile must be"):
        pipeline.Deblurrer(_dm(), CPU, tile=tile)


def test_animator_checks_its_arguments_when_called_not_when_iterated():
    an = pipeline.Animator(
        pipeline.Deblurrer(_dm(), CPU), BlurredImageEncoder(TINY_V), RecurrentVideoDecoder(TINY_V)
    )
    img = np.random.default_rng(3).random((40, 56, 3), dtype=np.float32)
    for frames in (0, 2.5, True, "3"):
        with pytest.raises(ValueError, match="frames must be"):
            an.frames(img, frames)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="sharp is 30x20 but the image 56x40"):
        an.frames(img, 3, sharp=img[:20, :30])
    assert len(an(img, np.int64(3))) == 3


def test_the_readme_python_api_runs_as_written(tiny_weights):
    """README's three calls: blurvid.deblur, blurvid.animate and ShakeRemover with the DM as judge."""
    import blurvid
    from blurvid.pipeline import Deblurrer, ShakeRemover, load_model

    rng = np.random.default_rng(3)
    image = rng.random((37, 53, 3), dtype=np.float32)
    sharp = blurvid.deblur(image)
    assert sharp.shape == image.shape and sharp.dtype == np.float32 and 0 <= sharp.min() <= sharp.max() <= 1
    want = pipeline.Deblurrer(load_model("dm"), CPU, pipeline.resolve_precision("auto", CPU))(image)
    np.testing.assert_array_equal(sharp, want)
    np.testing.assert_array_equal(blurvid.deblur((image * 255).round().astype(np.uint8)).shape, image.shape)
    frames = blurvid.animate(image, frames=9)
    assert len(frames) == 9 and all(f.shape == image.shape and f.dtype == np.float32 for f in frames)
    device = "cpu"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a tiny untrained judge may call the photo sharp
        out = ShakeRemover(device, judge=Deblurrer(load_model("dm"), device))(image)
    assert out.shape == image.shape and out.dtype == np.float32


@pytest.mark.parametrize("size", [(7, 7), (2, 3), (2, 3000), (61, 200)])
def test_shake_leaves_a_photo_too_small_for_a_kernel_as_it_was(size):
    """A 7x7 photo was deconvolved with a kernel larger than itself (15 dB from the input)."""
    x = torch.rand(1, 3, *size)
    with pytest.warns(
        UserWarning, match=r"too small to estimate camera shake in .*longest blur looked for, \d+ px"
    ) as caught:
        y = pipeline.ShakeRemover(CPU).tensor(x)
    assert torch.equal(y, x)
    assert caught[0].filename == __file__  # the caller's line (it named torch's inference_mode wrapper)


@pytest.mark.parametrize("tile", [0, -3, 16, 100.5, True])
def test_shake_remover_tile_must_be_a_size(tile):
    with pytest.raises(ValueError, match="tile must be"):
        pipeline.ShakeRemover(CPU, tile=tile)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"strength": 0}, "strength 0: use a number above 0"),  # the solve divides by the kernel's zeros
        ({"strength": float("inf")}, "strength inf: use a number above 0"),
        ({"strength": True}, "strength True: use a number above 0"),
        ({"min_blur_core": 0.0}, "min_blur_core 0.0: use a number above 0 to 1"),
    ],
)
def test_shake_remover_numbers_must_be_in_range(kw, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        pipeline.ShakeRemover(CPU, **kw)
    pipeline.ShakeRemover(CPU, strength=1e-3, min_blur_core=1.0, exposure=1.0)  # the ends that are allowed


@pytest.mark.parametrize(("asked", "used"), [(300, 288), (1024, 1024), (40, 32), (1000, 992)])
def test_deblurrer_tile_is_a_multiple_of_the_dm_padding(asked, used):
    """A 300 px tile, padded inside the DM, blended at 38.6 dB against one pass, against 51.9 at 288."""
    deb = pipeline.Deblurrer(_dm(), CPU, tile=asked)
    assert deb.tile == used and deb.overlap <= used // 4


@pytest.mark.parametrize("frames", [0, -1, 2.5, True])
def test_animator_flows_and_motion_check_frames(frames):
    """flows()/motion() took any frames: -1 gave torch's own RuntimeError, 0 an empty tensor."""
    an = _tiny_animator()
    x = torch.rand(1, 3, 24, 32)
    for call in (an.flows, an.motion):
        with pytest.raises(ValueError, match="frames must be a whole number >= 1"):
            call(x, x, frames)


def test_a_module_already_on_the_current_cuda_device_is_not_copied(monkeypatch):
    """cuda and cuda:0 compared unequal, so a network already on the GPU was copied (twice the memory)."""
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    same = pipeline._same_device
    assert same(torch.device("cuda:0"), torch.device("cuda"))
    assert same(torch.device("cuda"), torch.device("cuda:0"))
    assert not same(torch.device("cuda:1"), torch.device("cuda"))
    assert not same(torch.device("cuda:0"), torch.device("cpu"))
    assert same(torch.device("cpu"), torch.device("cpu"))


def test_flatten_alpha_composites_over_the_background():
    image = np.zeros((2, 2, 3), np.float32)
    image[..., 1] = 1.0  # green everywhere, also under transparent pixels
    alpha = np.array([[0.0, 1.0], [0.5, 0.25]], np.float32)
    out = pipeline.flatten_alpha(image, alpha)
    assert out.dtype == np.float32 and out.shape == (2, 2, 3)
    np.testing.assert_allclose(out[0, 0], [1, 1, 1])  # transparent: the white background
    np.testing.assert_allclose(out[0, 1], [0, 1, 0])  # opaque: the photo
    np.testing.assert_allclose(out[1, 0], [0.5, 1, 0.5])
    np.testing.assert_allclose(pipeline.flatten_alpha(image, alpha, background=0.0)[1, 1], [0, 0.25, 0])


def test_deblurrer_batch_and_overlap_are_checked():
    from blurvid.pipeline import Deblurrer

    net = DeblurNet(TINY_DM).eval()
    with pytest.raises(ValueError, match="overlap"):
        Deblurrer(net, torch.device("cpu"), tile=32, overlap=-5)  # NaN pixels
    with pytest.raises(ValueError, match="dtype must be"):
        Deblurrer(net, torch.device("cpu"), "bf16")  # torch's TypeError
    with pytest.raises(TypeError, match="dm must be a DeblurNet"):
        Deblurrer(BlurredImageEncoder(TINY_V), torch.device("cpu"))  # an AttributeError
    d = Deblurrer(net, torch.device("cpu"))
    assert d.batch(torch.rand(2, 3, 20, 24)).shape == (2, 3, 20, 24)
    for bad, message in (
        (torch.randint(0, 255, (2, 3, 20, 24), dtype=torch.uint8), "float image"),  # clamped garbage
        (torch.full((1, 3, 20, 24), float("nan")), "values must lie in"),
        (torch.rand(3, 20, 24), r"\(B, 3, H, W\)"),  # torch's channels_last rank error
        (torch.rand(1, 4, 20, 24), r"\(B, 3, H, W\)"),
    ):
        with pytest.raises(ValueError, match=message):
            d.batch(bad)


def test_animator_motion_size_is_checked():
    from blurvid.pipeline import Animator

    bie, rvd = BlurredImageEncoder(TINY_V), RecurrentVideoDecoder(TINY_V)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="motion_size"):
            Animator(None, bie, rvd, device="cpu", motion_size=bad)  # 0 and -1 were accepted


def test_size_settings_take_numpy_integers_as_plain_ints():
    """np.int64(64) (a size read from an array, say) was refused as not a whole number of pixels."""
    from blurvid.pipeline import Animator, Deblurrer

    bie, rvd = BlurredImageEncoder(TINY_V), RecurrentVideoDecoder(TINY_V)
    an = Animator(None, bie, rvd, device="cpu", motion_size=np.int64(64))
    assert an.motion_size == 64 and type(an.motion_size) is int
    d = Deblurrer(_dm(), CPU, tile=np.int32(96), overlap=np.uint8(16))
    assert (d.tile, d.overlap) == (96, 16) and type(d.tile) is int and type(d.overlap) is int
    for bad in (np.float64(64.0), "64"):
        with pytest.raises(ValueError, match="motion_size"):
            Animator(None, bie, rvd, device="cpu", motion_size=bad)


@pytest.mark.parametrize(("native", "counts"), [(9, (9, 17)), (5, (5, 4))])
def test_the_animator_runs_the_rvd_its_native_steps_and_samples_every_count_from_them(native, counts):
    """Whatever count is asked, the RVD runs exactly the N steps it was trained with; N frames are those
    steps in time order, other counts are sampled from that trajectory (an odd count's centre frame is
    the trajectory's centre)."""
    from blurvid.models.warp import resample_in_time

    cfg = VideoConfig.from_dict({**TINY_V.to_dict(), "frames": native})
    torch.manual_seed(0)
    bie, rvd = BlurredImageEncoder(cfg), RecurrentVideoDecoder(cfg)
    with torch.no_grad():
        for head in [rvd.decoder.flow8, *rvd.decoder.flows]:
            head.weight.normal_(0, 0.3)
    an = pipeline.Animator(None, bie, rvd, motion_size=32, device=CPU)
    runs: list[tuple[int, torch.Tensor]] = []
    steps: list[int] = []
    forward = an.rvd.forward

    def recording(emb, sharp, n, *args, **kwargs):  # type: ignore[no-untyped-def]
        res = forward(emb, sharp, n, *args, **kwargs)
        runs.append((n, res.flows[-1][0]))
        return res

    an.rvd.forward = recording  # type: ignore[method-assign]
    an.rvd.flow_encoder.register_forward_hook(lambda m, i, o: steps.append(1))
    g = torch.Generator().manual_seed(4)
    blurred, sharp = torch.rand(1, 3, 37, 53, generator=g), torch.rand(1, 3, 37, 53, generator=g)
    for frames in counts:
        runs.clear()
        steps.clear()
        out = an.motion(blurred, sharp, frames)
        assert [n for n, _ in runs] == [native] and len(steps) == native
        trajectory = runs[0][1][..., : out.shape[-2], : out.shape[-1]]  # the motion copy, unpadded
        assert out.shape[0] == frames
        torch.testing.assert_close(out, resample_in_time(trajectory, frames), rtol=0, atol=1e-6)
        if frames == native:
            assert torch.equal(out, trajectory)
        if frames % 2:
            assert torch.equal(out[(frames - 1) // 2], trajectory[(native - 1) // 2])
    assert not torch.allclose(trajectory[0], trajectory[-1], atol=1e-3)  # a motion, not a still


# ------------------------------------------------------------------ round 5: mutation audit


def test_values_just_past_the_rounding_margin_are_refused_not_clipped():
    """Floats may overshoot [0, 1] by 1e-3 (rounding) and are clipped; 1.005 is no rounding error: a
    looser bound would clip real out-of-range data in silence."""
    img = np.full((4, 5, 3), 0.5, np.float32)
    img[0, 0, 0] = 1.0009
    assert float(pipeline.to_tensor(img, CPU).max()) == 1.0
    img[0, 0, 0] = 1.005
    with pytest.raises(ValueError, match=r"values in \[0, 1\]"):
        pipeline.to_tensor(img, CPU)
    x = torch.full((1, 3, 4, 5), 0.5)
    x[0, 0, 0, 0] = 1.005
    with pytest.raises(ValueError, match="values must lie in"):
        pipeline.Deblurrer(_dm(), CPU).tensor(x)


def test_an_empty_batch_is_a_value_error():
    """A (0, 3, H, W) batch must be refused like any other wrong shape (else torch's RuntimeError
    from taking the minimum of nothing)."""
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        pipeline.Deblurrer(_dm(), CPU).batch(torch.rand(0, 3, 20, 24))


def test_an_overlap_of_zero_is_allowed():
    """overlap=0 (tiles that only touch) is a valid setting: only negative overlaps are refused."""
    deb = pipeline.Deblurrer(_dm(), CPU, tile=64, overlap=0)
    assert deb.overlap == 0
    seen = []
    out = deb(np.random.default_rng(0).random((70, 140, 3), dtype=np.float32), lambda d, n: seen.append(n))
    assert out.shape == (70, 140, 3) and np.isfinite(out).all() and seen[-1] > 1


def test_up_to_twice_a_tile_of_pixels_runs_in_one_pass():
    """Inputs of at most 2 * tile * tile pixels run untiled (the class promises 1080p in one pass at the
    default tile); one pixel row more and they are tiled."""
    img = np.random.default_rng(1).random((64, 128, 3), dtype=np.float32)  # exactly 2 * 64 * 64 pixels
    calls: list[tuple[int, int]] = []
    out = pipeline.Deblurrer(_dm(), CPU, tile=64, overlap=16)(img, lambda d, n: calls.append((d, n)))
    assert calls == [(1, 1)]
    np.testing.assert_array_equal(out, pipeline.Deblurrer(_dm(), CPU, tile=4096)(img))
    calls.clear()
    taller = np.random.default_rng(1).random((65, 128, 3), dtype=np.float32)
    pipeline.Deblurrer(_dm(), CPU, tile=64, overlap=16)(taller, lambda d, n: calls.append((d, n)))
    assert calls[-1][1] > 1


def test_deblurrer_batch_clamps_its_output_to_the_unit_range():
    """batch() promises [0, 1] like tensor(); a DM with a large residual overshoots before the clamp."""
    dm = _dm()
    with torch.no_grad():
        dm.tail[-1].weight.normal_(0, 2.0)
    x = torch.rand(2, 3, 20, 24, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        raw = dm(pipeline.pad_to_multiple(x, 32)[0])
    assert float(raw.min()) < 0 or float(raw.max()) > 1  # the network alone leaves the range
    y = pipeline.Deblurrer(dm, CPU).batch(x)
    assert y.shape == x.shape and float(y.min()) >= 0 and float(y.max()) <= 1


def test_the_deblurrer_runs_its_network_in_the_precision_asked():
    """bf16 must really run the DM in bf16 (closeness to fp32 alone would pass with it ignored); its
    inner layers, that is: the two end convolutions run in float32 by design."""
    x = torch.rand(1, 3, 20, 28, generator=torch.Generator().manual_seed(0))
    for dtype in (torch.float32, torch.bfloat16):
        deb = pipeline.Deblurrer(_dm(), CPU, dtype)
        seen: list[torch.dtype] = []
        deb.dm.tail[0].register_forward_hook(lambda m, i, o, seen=seen: seen.append(o.dtype))
        deb.tensor(x)
        assert seen == [dtype]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without a GPU")
def test_an_indexed_cuda_device_without_a_gpu_is_refused():
    """'cuda:0' is refused without a GPU like 'cuda' (else it would fail later, inside torch)."""
    for device in ("cuda:0", "CUDA:1"):
        with pytest.raises(ValueError, match="no CUDA GPU is available"):
            pipeline.select_device(device)


def test_bounded_size_rounds_to_the_nearest_pixel():
    """300x100 bounded to 200: 66.7 px rounds to 67 (truncating would give 66, the aspect ratio off)."""
    assert pipeline.bounded_size(100, 300, 200) == (67, 200)
    assert pipeline.bounded_size(300, 100, 200) == (200, 67)
    assert pipeline.bounded_size(1, 900, 30, 8) == (8, 30)  # at least `multiple`


def test_the_motion_copy_of_any_size_comes_back_at_its_own_size():
    """A motion copy over 64 px whose sides are no multiple of 8 is padded up to one (rounded down it was
    cropped, and the flows came back smaller than the copy)."""
    torch.manual_seed(0)
    an = pipeline.Animator(
        None, BlurredImageEncoder(TINY_V), RecurrentVideoDecoder(TINY_V), motion_size=100, device=CPU
    )
    x = torch.rand(1, 3, 90, 100, generator=torch.Generator().manual_seed(1))
    assert an.motion(x, x, 3).shape == (3, 2, 90, 100)
    assert an.flows(x, x, 3).shape == (3, 2, 90, 100)


def test_the_animator_takes_its_precision_from_the_deblurrer_unless_given():
    """The BIE and RVD run in the deblurrer's dtype by default (else bf16 --precision would not reach them)."""
    bie, rvd = BlurredImageEncoder(TINY_V), RecurrentVideoDecoder(TINY_V)
    deb = pipeline.Deblurrer(_dm(), CPU, torch.bfloat16)
    assert pipeline.Animator(deb, bie, rvd).dtype is torch.bfloat16
    assert pipeline.Animator(deb, bie, rvd, dtype=torch.float32).dtype is torch.float32
    assert pipeline.Animator(pipeline.ShakeRemover(CPU), bie, rvd).dtype is torch.float32


def test_motion_that_overflows_in_half_precision_is_recomputed_in_float32(monkeypatch):
    """Non-finite bf16 flows are run again in float32 (retrying in bf16 would raise for a photo that works)."""
    an = _tiny_animator()
    an.dtype = torch.bfloat16
    real = an._motion_flows
    dtypes: list[torch.dtype] = []

    def flaky(bp, sp, steps, dtype):  # type: ignore[no-untyped-def]
        dtypes.append(dtype)
        flows = real(bp, sp, steps, dtype)
        return flows if dtype is torch.float32 else torch.full_like(flows, float("nan"))

    monkeypatch.setattr(an, "_motion_flows", flaky)
    x = torch.rand(1, 3, 24, 40, generator=torch.Generator().manual_seed(2))
    out = an.motion(x, x, 3)
    assert dtypes == [torch.bfloat16, torch.float32] and bool(torch.isfinite(out).all())
    an.dtype = torch.float32
    torch.testing.assert_close(out, an.motion(x, x, 3))


def test_the_animator_runs_training_mode_networks_as_eval_mode_copies():
    """A BIE handed over in training mode must run in eval mode (its batch-norm on the running stats),
    on a copy: used as it was, its flows depended on the batch's own statistics."""
    torch.manual_seed(0)
    bie, rvd = BlurredImageEncoder(TINY_V), RecurrentVideoDecoder(TINY_V)
    an = pipeline.Animator(None, bie.train(), rvd.train(), motion_size=32, device=CPU)
    assert bie.training and rvd.training
    assert not an.bie.training and not an.rvd.training
