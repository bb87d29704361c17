// The components the image runs (`voice-edge <component>`), each by its own main module. Plain
// data, so the dispatcher, its tests and the Dockerfile check read one list.

export interface Component {
  /** Relative to this folder. */
  readonly main: string;
  /** `npm run <script>` runs the same main. */
  readonly npmScript: string;
  readonly summary: string;
}

export const COMPONENTS = {
  relay: { main: '../relay/main.ts', npmScript: 'relay', summary: 'the stateless UDP relay' },
  signaling: { main: '../signaling/main.ts', npmScript: 'signaling', summary: 'the WHIP signaling service' },
  transceiver: { main: '../transceiver/main.ts', npmScript: 'transceiver', summary: 'a werift transceiver' },
  operator: {
    main: '../operator/main.ts',
    npmScript: 'operator',
    summary: 'the Kubernetes operator (VoiceEdgeCluster, TransceiverPool)',
  },
  'echo-agent': { main: '../agents/echo/main.ts', npmScript: 'agent:echo', summary: 'the echo backend' },
} as const satisfies Record<string, Component>;

export type ComponentName = keyof typeof COMPONENTS;
