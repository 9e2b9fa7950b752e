"""Each s26 answer through this commit's static stage (with its request's facts), no model, no sandbox."""
import glob
from hpc_agent.static import static_stage
from hpc_agent.bench.tasks import load_tasks
from hpc_agent.request_facts import request_source_model
tasks = load_tasks()
for f in sorted(glob.glob('/work/sweeps/s26-analysis/cells/*/attempt-*/answer.py')):
    cell = f.split('/')[-3]; att = f.split('/')[-2]
    task = tasks[cell.split('__')[1]]
    if not glob.glob(f.rsplit('/',1)[0] + '/validation.json'): continue
    r = static_stage(open(f).read(), source_model=request_source_model(task.prompt))
    new = [x for x in r.repairs if 'Datasets()' in x or 'frozen' in x] + [e for e in r.errors if 'Maker' in e or 'rows of its table' in e]
    print(task.id, att, 'new:', [x[:70] for x in new])
