"""Simulated execution venues: the paper venue answering the bot's orders."""
