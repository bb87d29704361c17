// The entry point of the voice-edge image: `node cli/voice-edge.ts <component> [--config file]`
// (ENTRYPOINT ["node", "cli/voice-edge.ts"], a pod's args = [<component>]). See cli/dispatch.ts.
import { COMPONENTS } from './components.ts';
import { dispatch } from './dispatch.ts';

await dispatch(COMPONENTS, import.meta.url);
