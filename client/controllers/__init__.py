"""The tray app's controllers: each owns one part of what the agent does (signing in, alerts,
the library, settings, the idle lock, the status shown), its windows, built on first need, and
the core calls behind them. client/app.py builds them and wires them together.
"""
