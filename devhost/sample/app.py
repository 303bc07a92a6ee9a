"""The app devhost runs by default: the deployed blueprints plus the sample chain."""

import azure.functions as func

from devhost.sample.chain import bp as sample_bp
from function_app import BLUEPRINTS

app = func.FunctionApp()
for blueprint in (*BLUEPRINTS, sample_bp):
    app.register_functions(blueprint)
