"""A tiny random Llama model folder, built offline in about two seconds.

It gives real vLLM servers something to load in tests: a byte-level BPE tokenizer trained on a
few lines of text (so it can spell any string, JSON included), a ChatML chat template, and a
randomly initialised two-layer Llama saved as safetensors. Its answers are noise; constrained
decoding still makes them schema-valid.
"""

from __future__ import annotations

from pathlib import Path

TINY_VOCAB_SIZE = 512
TINY_HIDDEN = 128
TINY_INTERMEDIATE = 256
TINY_LAYERS = 2
TINY_HEADS = 4
TINY_KV_HEADS = 2
TINY_HEAD_DIM = 32  # vLLM's CPU attention rejects head_dim 16
TINY_MAX_POSITIONS = 4096
TINY_SEED = 0

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

TRAINING_TEXT = (
    "You are a recommender. Pick one movie for the user and explain why.",
    'Reply with JSON: {"item_id": 3, "reason": "a comedy after two dramas"}',
    "Toy Story (1995); genres: Animation, Children's, Comedy",
    "GoldenEye (1995); genres: Action, Adventure, Thriller",
    "The user watched Star Wars, Fargo and Heat; next they may enjoy something lighter.",
    "0123456789 [] {} () , . : ; ' \" - _ + = ? ! true false null",
)


def build_tiny_model(directory: Path) -> Path:
    """Write the tiny model (config, safetensors, tokenizer, chat template); return the folder."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    directory.mkdir(parents=True, exist_ok=True)
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=TINY_VOCAB_SIZE,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(TRAINING_TEXT, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        unk_token="<|endoftext|>",
        pad_token="<|endoftext|>",
    )
    tokenizer.chat_template = CHATML_TEMPLATE
    tokenizer.save_pretrained(directory)

    torch.manual_seed(TINY_SEED)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=TINY_HIDDEN,
        intermediate_size=TINY_INTERMEDIATE,
        num_hidden_layers=TINY_LAYERS,
        num_attention_heads=TINY_HEADS,
        num_key_value_heads=TINY_KV_HEADS,
        head_dim=TINY_HEAD_DIM,
        max_position_embeddings=TINY_MAX_POSITIONS,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    model.save_pretrained(directory)
    return directory
