import pytest
import torch

from transferlaw.config import ConfigError
from transferlaw.hub import cached_revisions, check_hub_revisions, load_model, load_tokenizer, publish_revision


def test_published_revisions_load_like_hub_checkpoints(tiny_model, tiny_tokenizer, tmp_path):
    def writer(folder):
        tiny_model.save_pretrained(folder)
        tiny_tokenizer.save_pretrained(folder)

    publish_revision(writer, tmp_path, "org/tiny", "step0")
    with torch.no_grad():
        for p in tiny_model.parameters():
            p.add_(1.0)
    publish_revision(writer, tmp_path, "org/tiny", "step8")
    assert cached_revisions(tmp_path, "org/tiny") == {"step0", "step8"}
    m0 = load_model("org/tiny", "step0", str(tmp_path))
    m8 = load_model("org/tiny", "step8", str(tmp_path))
    w0, w8 = (next(m.parameters()).detach() for m in (m0, m8))
    assert torch.allclose(w8, w0 + 1.0)
    assert len(load_tokenizer("org/tiny", "step8", str(tmp_path))) == len(tiny_tokenizer)
    with pytest.raises(OSError):
        load_model("org/tiny", "step3", str(tmp_path))


def test_missing_hub_revision_names_model_and_revision(tmp_path):
    with pytest.raises(ConfigError, match=r"models\.pythia\.revisions: step143000 of EleutherAI/pythia-70m"):
        check_hub_revisions("EleutherAI/pythia-70m", ["step143000"], str(tmp_path), True, "models.pythia")
