"""Scenario library: the incidents a facilitator can inject, loaded from scenarios/*.yaml."""
