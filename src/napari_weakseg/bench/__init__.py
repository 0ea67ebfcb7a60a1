"""Benchmarks: they measure and write reports (JSON + Markdown + PNG); tests assert behaviour elsewhere."""
