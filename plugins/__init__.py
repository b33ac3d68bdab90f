"""The built-in KPI plugins, one module per CRM process of Payne & Frow's framework.

They are registered through the ``crmmetrics`` entry-point group exactly like third-party
plugins, so they can be listed, restricted and blocked the same way.
"""
