import pytest
import torch

from transferlaw.train.hub import load_model, load_tokenizer, publish_revision, ref_path


def test_published_revisions_load_like_hub_checkpoints(tiny_model, tiny_tokenizer, tmp_path):
    def writer(folder):
        tiny_model.save_pretrained(folder)
        tiny_tokenizer.save_pretrained(folder)

    publish_revision(writer, tmp_path, "org/tiny", "step0")
    with torch.no_grad():
        for p in tiny_model.parameters():
            p.add_(1.0)
    publish_revision(writer, tmp_path, "org/tiny", "step8")
    assert {p.name for p in ref_path(tmp_path, "org/tiny", "step0").parent.iterdir()} == {"step0", "step8"}
    m0 = load_model("org/tiny", "step0", str(tmp_path))
    m8 = load_model("org/tiny", "step8", str(tmp_path))
    w0, w8 = (next(m.parameters()).detach() for m in (m0, m8))
    assert torch.allclose(w8, w0 + 1.0)
    assert len(load_tokenizer("org/tiny", "step8", str(tmp_path))) == len(tiny_tokenizer)
    with pytest.raises(OSError):
        load_model("org/tiny", "step3", str(tmp_path))


def test_loading_never_runs_code_from_a_checkpoint(tiny_model, tiny_tokenizer, tmp_path):
    """A checkpoint whose config asks for its own code (auto_map) is refused, not executed."""
    import json

    marker = tmp_path / "ran"

    def writer(folder):
        tiny_model.save_pretrained(folder)
        tiny_tokenizer.save_pretrained(folder)
        cfg = json.loads((folder / "config.json").read_text())
        cfg["auto_map"] = {"AutoModelForCausalLM": "evil.EvilModel"}
        (folder / "config.json").write_text(json.dumps(cfg))
        (folder / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('x')\n")

    publish_revision(writer, tmp_path, "org/evil", "step0")
    try:
        load_model("org/evil", "step0", str(tmp_path))
    except (ValueError, OSError):
        pass  # refusing is fine; running the checkpoint's code is not
    assert not marker.exists()
