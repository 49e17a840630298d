import { loadConfig } from '../../config/config.js';
import { openDatabase } from '../../platform/db/database.js';
import { JSON_OPTION, type Command } from '../command.js';
import { printErr, printJson, printLine } from '../output.js';

export const migrateCommand: Command = {
  name: 'migrate',
  options: { ...JSON_OPTION },
  help: `Usage: frostgate migrate [--json]

Applies every migration in migrations/ that the database has not recorded, in order, each in
its own transaction, under an advisory lock (safe to run from several machines at once).
Running it again applies nothing. A migration changed after it was applied is refused.
Targets FG_DB_URL, or the embedded database under FG_DATA_DIR.

Options:
  --json       print {database, applied, already_applied} as JSON
  -h, --help   this help`,
  async run({ values }) {
    const { config } = loadConfig();
    const db = await openDatabase({ url: config.db.url, embeddedDir: config.dataDir, appRole: config.db.appRole, poolSize: 2 });
    try {
      const result = await db.migrate((name) => {
        if (!values.json) printErr(`applied ${name}`);
      });
      if (values.json) printJson({ database: db.location, applied: result.applied, already_applied: result.alreadyApplied });
      else printLine(`${db.location}: ${result.applied.length} migration(s) applied, ${result.alreadyApplied} already applied`);
      return 0;
    } finally {
      await db.close();
    }
  },
};
