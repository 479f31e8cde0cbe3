"""A random transformers Mamba2ForCausalLM (2 layers, padded vocabulary) saved with
``save_pretrained`` beside a GPT-NeoX-style tokenizer, and its import as a run directory.

Nothing is downloaded: the model is randomly initialised and the tokenizer trained on a few
sentences; both are written in the layouts a hub snapshot has."""

from __future__ import annotations

from pathlib import Path

import pytest

TEXTS = ["The quick brown fox jumps over the lazy dog. " * 3,
         "Question: Tom has 3 apples and buys 4 more. How many apples does he have?\nAnswer: 3 + 4 = 7. #### 7",
         "Mamba is a state space model; it reads text one token at a time."] * 40
PADDING_ROWS = 20
REPO_ROOT = Path(__file__).resolve().parents[2]


def save_hf_checkpoint(directory: Path, seed: int = 0, **config) -> Path:
    """A random Mamba2ForCausalLM and its tokenizer, as save_pretrained writes them."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Mamba2Config, Mamba2ForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(TEXTS, trainer=trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False))
    # GPT-NeoX declares bos = eos = unk = <|endoftext|> and no pad token
    PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                            unk_token="<|endoftext|>").save_pretrained(directory)
    torch.manual_seed(seed)
    values = dict(vocab_size=tok.get_vocab_size() + PADDING_ROWS, hidden_size=64, state_size=16,
                  num_hidden_layers=2, expand=2, head_dim=16, num_heads=8, n_groups=2, chunk_size=16,
                  tie_word_embeddings=False, initializer_range=0.5)
    values.update(config)
    model = Mamba2ForCausalLM(Mamba2Config(**values))
    with torch.no_grad():  # visible dynamics: dt and A away from their tiny defaults, D not one
        for layer in model.backbone.layers:
            layer.mixer.dt_bias.uniform_(-2.0, 0.5)
            layer.mixer.A_log.uniform_(-1.0, 1.0)
            layer.mixer.D.uniform_(0.5, 1.5)
            layer.mixer.norm.weight.uniform_(0.5, 1.5)
    model.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def hf_checkpoint(tmp_path_factory) -> Path:
    pytest.importorskip("transformers", reason="transformers is in the dev and hf extras")
    return save_hf_checkpoint(tmp_path_factory.mktemp("hf-mamba2"))


@pytest.fixture(scope="session")
def imported_run(hf_checkpoint, tmp_path_factory) -> Path:
    from trainer.import_hf import import_checkpoint

    run = tmp_path_factory.mktemp("runs") / "mamba2-tiny"
    import_checkpoint(str(hf_checkpoint), run, say=lambda m: None)
    return run
