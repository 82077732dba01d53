"""Tiny Hugging Face model folders built in the test run (random weights, no hub).

- :func:`make_causal_lm`: a GPT-2-style causal LM with a byte-level BPE tokenizer trained
  here on a few sentences, and a chat template; saved with ``save_pretrained``.
- :func:`make_embedder`: a sentence-transformers model (tiny BERT + mean pooling +
  normalisation) with a WordPiece tokenizer; saved with ``SentenceTransformer.save``.

Both take well under a second to build, so tests and benchmarks make their own.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

CORPUS = [
    "the quick brown fox jumps over the lazy dog",
    "a model is served by the platform to many users at once",
    "hello world, this is a tiny language model for tests",
    "continuous batching lets new requests join between steps",
    "embeddings turn sentences into vectors of numbers",
    "user: hi there assistant: hello how can i help you today",
    "Ünïcödé text, emoji 🙂 and numbers 12345 are bytes too",
]

#: A small chat template: the role on its own line, then the content.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def make_causal_lm(
    path: Path,
    *,
    n_layer: int = 2,
    n_embd: int = 32,
    n_head: int = 2,
    n_positions: int = 128,
    vocab_size: int = 300,
    seed: int = 0,
    chat_template: bool = True,
) -> Path:
    """A random GPT-2 and its tokenizer saved to ``path``; returns ``path``."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(CORPUS, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        unk_token="<|endoftext|>",
    )
    if chat_template:
        fast.chat_template = CHAT_TEMPLATE
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=len(fast),
        n_positions=n_positions,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        # Wide random weights: the next token depends on the context, so that decoding
        # mistakes (a wrong position, a padded key) change the text instead of hiding
        # behind one token repeated forever.
        initializer_range=0.5,
    )
    model = GPT2LMHeadModel(config).eval()
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    fast.save_pretrained(path)
    return path


def make_embedder(path: Path, *, hidden: int = 32, layers: int = 2, seed: int = 0) -> Path:
    """A random sentence-transformers model (BERT, mean pooling, normalise) saved to ``path``."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Transformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertModel, BertTokenizerFast

    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokenizer.train_from_iterator(
        CORPUS, trainer=trainers.WordPieceTrainer(vocab_size=200, special_tokens=special, show_progress=False)
    )
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", tokenizer.token_to_id("[CLS]")), ("[SEP]", tokenizer.token_to_id("[SEP]"))],
    )
    fast = BertTokenizerFast(tokenizer_object=tokenizer)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(fast),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=hidden * 2,
        max_position_embeddings=64,
    )
    raw = path.parent / f"{path.name}-raw"
    BertModel(config).eval().save_pretrained(raw)
    fast.save_pretrained(raw)
    transformer = Transformer(str(raw), max_seq_length=64)
    model = SentenceTransformer(modules=[transformer, Pooling(hidden, "mean"), Normalize()], device="cpu")
    model.save(str(path))
    return path


@functools.cache
def _embedder(path: Path) -> Any:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(path), device="cpu", local_files_only=True)


def encode(path: Path, texts: list[str]) -> Any:
    """sentence-transformers' own ``encode`` of ``texts`` with the model at ``path``."""
    return _embedder(path).encode(texts, convert_to_numpy=True)


@functools.cache
def _causal_lm(path: Path) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoTokenizer.from_pretrained(path), AutoModelForCausalLM.from_pretrained(path).eval()


@functools.cache
def greedy(path: Path, prompt: str, max_new_tokens: int) -> list[int]:
    """A plain PyTorch greedy decode (no batching, no padding): the token ids it generates."""
    import torch

    tokenizer, model = _causal_lm(path)
    ids = torch.tensor([tokenizer.encode(prompt)])
    out: list[int] = []
    with torch.no_grad():
        result = model(ids, use_cache=True)
        cache = result.past_key_values
        for _ in range(max_new_tokens):
            token = int(result.logits[0, -1].argmax())
            out.append(token)
            if token == tokenizer.eos_token_id:
                break
            result = model(torch.tensor([[token]]), past_key_values=cache, use_cache=True)
            cache = result.past_key_values
    return out
