"""Shared kernel of SupportLoop: settings, domain model, storage and model artifacts.

Every feature package (chat_service, finetune_loop, connectors, eval) imports from here;
this package imports none of them.
"""
