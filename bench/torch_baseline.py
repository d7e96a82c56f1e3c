#!/usr/bin/env python3
"""PyTorch CPU baseline for bench/model.ts (the TensorFlow.js model throughput benchmark).

Builds ``LlamaForCausalLM(LlamaConfig(**cfg))`` from a transformers LlamaConfig JSON with random
init (float32, ``torch.manual_seed(0)``; nothing is downloaded) and measures, on CPU:

* training throughput: tokens/s of full AdamW steps (lr 1e-4, no weight decay, zero_grad,
  forward with the causal-LM loss, backward, clip_grad_norm_(1.0), step) on random token ids of
  shape [train_batch, train_seq], after ``warmup`` untimed steps;
* generation throughput: new tokens/s of greedy ``model.generate`` with a fixed number of new
  tokens (no EOS stopping), prompts of equal length, for batch 1 and 32, with and without the
  KV cache.

Prints one JSON object on stdout (logs go to stderr); bench/model.ts runs this script when
SRLM_TORCH_PYTHON is set and prints the tfjs/torch ratios.

    python bench/torch_baseline.py --config bench/configs/llama-0.8m.json
    python bench/torch_baseline.py --config bench/configs/llama-7m.json --threads 2 --train-steps 10
"""

import argparse
import json
import os
import statistics
import sys
import time

REQUIRED_KEYS = (
    'vocab_size', 'hidden_size', 'intermediate_size', 'num_hidden_layers', 'num_attention_heads',
    'max_position_embeddings',
)
GEN_BATCHES = (1, 32)
GEN_CACHE = (True, False)
MIN_CALLS, MIN_TOTAL_S, MAX_CALLS = 5, 3.0, 31


def log(msg):
    print(f'[torch_baseline] {msg}', file=sys.stderr, flush=True)


def fail(msg):
    print(f'torch_baseline: error: {msg}', file=sys.stderr, flush=True)
    sys.exit(2)


def parse_args():
    p = argparse.ArgumentParser(description='PyTorch CPU throughput baseline for bench/model.ts')
    p.add_argument('--config', required=True, help='transformers LlamaConfig as a JSON file')
    p.add_argument('--train-batch', type=int, default=16)
    p.add_argument('--train-seq', type=int, default=128)
    p.add_argument('--train-steps', type=int, default=20)
    p.add_argument('--warmup', type=int, default=3)
    p.add_argument('--gen-prompt-len', type=int, default=16)
    p.add_argument('--gen-new-tokens', type=int, default=32)
    p.add_argument('--threads', type=int, default=os.cpu_count() or 1)
    a = p.parse_args()
    for name in ('train_batch', 'train_seq', 'train_steps', 'gen_prompt_len', 'gen_new_tokens', 'threads'):
        if getattr(a, name) < 1:
            p.error(f'--{name.replace("_", "-")} must be >= 1')
    if a.warmup < 0:
        p.error('--warmup must be >= 0')
    return a


def load_config(path, args):
    try:
        with open(path, encoding='utf8') as f:
            cfg = json.load(f)
    except OSError as e:
        fail(f'cannot read config {path}: {e}')
    except json.JSONDecodeError as e:
        fail(f'config {path} is not valid JSON: {e}')
    if not isinstance(cfg, dict):
        fail(f'config {path} must be a JSON object')
    if cfg.get('model_type', 'llama') != 'llama':
        fail(f'config {path}: model_type must be "llama", got {cfg.get("model_type")!r}')
    missing = [k for k in REQUIRED_KEYS if k not in cfg]
    if missing:
        fail(f'config {path}: missing keys {", ".join(missing)}')
    for k in REQUIRED_KEYS + ('num_key_value_heads',):
        if k in cfg and (not isinstance(cfg[k], int) or isinstance(cfg[k], bool) or cfg[k] < 1):
            fail(f'config {path}: {k} must be a positive integer, got {cfg[k]!r}')
    if cfg['vocab_size'] <= 3:
        fail(f'config {path}: vocab_size must be > 3 (token ids are drawn from [3, vocab))')
    heads = cfg['num_attention_heads']
    kv = cfg.get('num_key_value_heads', heads)
    if cfg['hidden_size'] % heads:
        fail(f'config {path}: hidden_size {cfg["hidden_size"]} not divisible by num_attention_heads {heads}')
    if heads % kv:
        fail(f'config {path}: num_attention_heads {heads} not divisible by num_key_value_heads {kv}')
    need = max(args.train_seq, args.gen_prompt_len + args.gen_new_tokens)
    if cfg['max_position_embeddings'] < need:
        fail(f'config {path}: max_position_embeddings {cfg["max_position_embeddings"]} < {need} positions needed')
    return cfg


def main():
    args = parse_args()
    cfg = load_config(args.config, args)

    import torch
    import transformers
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    log(f'torch {torch.__version__}, transformers {transformers.__version__}, threads {threads} '
        f'(interop {torch.get_num_interop_threads()}), cpu_count {os.cpu_count()}')

    torch.manual_seed(0)
    kwargs = {k: v for k, v in cfg.items() if k != 'model_type'}
    try:
        config = LlamaConfig(**kwargs)
        model = LlamaForCausalLM(config).to(dtype=torch.float32, device='cpu')
    except Exception as e:  # noqa: BLE001 - report any config rejection clearly
        fail(f'cannot build LlamaForCausalLM from {args.config}: {type(e).__name__}: {e}')
    parameters = sum(p.numel() for p in model.parameters())  # tied embeddings counted once
    log(f'parameters {parameters}')
    vocab = config.vocab_size
    gen = torch.Generator().manual_seed(1)

    # ---- training ----
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.0)
    ids = torch.randint(3, vocab, (args.train_batch, args.train_seq), generator=gen)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    for i in range(args.warmup):
        loss = step()
        log(f'train warmup {i + 1}/{args.warmup} loss {loss:.4f}')
    t0 = time.perf_counter()
    for _ in range(args.train_steps):
        loss = step()
    train_s = time.perf_counter() - t0
    train_tps = args.train_batch * args.train_seq * args.train_steps / train_s
    log(f'train {args.train_steps} steps in {train_s:.2f}s = {train_tps:.0f} tok/s (last loss {loss:.4f})')
    del opt

    # ---- generation ----
    model.eval()
    model.generation_config.eos_token_id = None  # also drop the config default (2): never stop early
    results = []
    with torch.inference_mode():
        for batch in GEN_BATCHES:
            prompts = torch.randint(3, vocab, (batch, args.gen_prompt_len), generator=gen)
            mask = torch.ones_like(prompts)
            for use_cache in GEN_CACHE:
                def run(n):
                    out = model.generate(prompts, attention_mask=mask, max_new_tokens=n, min_new_tokens=n,
                                         do_sample=False, use_cache=use_cache, pad_token_id=0, eos_token_id=None)
                    if out.shape != (batch, args.gen_prompt_len + n):
                        raise RuntimeError(f'generate returned shape {tuple(out.shape)}, expected '
                                           f'{(batch, args.gen_prompt_len + n)}')
                    return out

                run(min(4, args.gen_new_tokens))  # warmup
                # At least MIN_CALLS timed calls, more until they add up to MIN_TOTAL_S (at most
                # MAX_CALLS); the median (bench/model.ts times its own calls the same way).
                times = []
                while (len(times) < MIN_CALLS or sum(times) < MIN_TOTAL_S) and len(times) < MAX_CALLS:
                    t = time.perf_counter()
                    run(args.gen_new_tokens)
                    times.append(time.perf_counter() - t)
                secs = statistics.median(times)
                tps = batch * args.gen_new_tokens / secs
                log(f'generate batch {batch} cache {use_cache}: {secs:.3f}s (of {len(times)}) = {tps:.1f} tok/s')
                results.append({'batch': batch, 'cache': use_cache, 'new_tokens': args.gen_new_tokens,
                                'seconds': secs, 'tokens_per_second': tps})

    print(json.dumps({
        'framework': 'pytorch',
        'torch': torch.__version__,
        'transformers': transformers.__version__,
        'threads': threads,
        'parameters': parameters,
        'config': cfg,
        'train': {'batch': args.train_batch, 'seq': args.train_seq, 'steps': args.train_steps,
                  'seconds': train_s, 'tokens_per_second': train_tps},
        'generate': results,
    }))


if __name__ == '__main__':
    main()
