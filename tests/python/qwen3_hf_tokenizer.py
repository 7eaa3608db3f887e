"""Hugging Face's Qwen tokenizer built from vocab.json and merges.txt, for the tokenizer tests and
bench/tokenizer_vs_hf.py: transformers' Qwen2TokenizerFast (which sets up Qwen2's normaliser,
pre-tokeniser and byte-level BPE in Hugging Face's Rust tokenizers library) plus Qwen3's added
tokens, as Qwen's own tokenizer.json lists them.

Importing it raises ImportError when transformers is missing; callers skip, naming it."""
import os

from tokenizers import AddedToken
from transformers import Qwen2TokenizerFast

# Qwen3's added tokens in id order, from 151643: not in vocab.json.
QWEN3_ADDED_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>",
    "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
    "<|repo_name|>", "<|file_sep|>", "<tool_response>", "</tool_response>", "<think>", "</think>",
]
FIRST_ADDED_ID = 151643


def load_qwen3(directory):
    """The transformers tokenizer for DIRECTORY/vocab.json and merges.txt, with the added tokens
    at their ids (checked)."""
    tokenizer = Qwen2TokenizerFast(
        vocab_file=os.path.join(directory, "vocab.json"),
        merges_file=os.path.join(directory, "merges.txt"),
        unk_token=None, bos_token=None, eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    tokenizer.add_tokens([AddedToken(t, normalized=False, special=True)
                          for t in QWEN3_ADDED_TOKENS[1:]], special_tokens=True)
    for offset, token in enumerate(QWEN3_ADDED_TOKENS):
        got = tokenizer.convert_tokens_to_ids(token)
        if got != FIRST_ADDED_ID + offset:
            raise RuntimeError(f"added token {token} got id {got}, expected "
                               f"{FIRST_ADDED_ID + offset}")
    return tokenizer
