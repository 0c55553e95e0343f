def run(name):
    return {"ran": name}
